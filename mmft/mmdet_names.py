"""The ``type`` names that MMDetection 3.3.0 registers, by MMEngine registry name.

Data, not code: read from the ``@<REGISTRY>.register_module()`` decorators (and the
``<REGISTRY>.register_module(name=..., module=...)`` calls) of MMDetection 3.3.0's source.
:func:`mmft.registry.explain_unknown_type` uses it to tell a type that MMDetection has but
mmft does not implement (``RetinaNet`` before mmft has it) from a typo; a name that mmft
registers is never looked up here, so the list stays correct as mmft adds families.
"""
from typing import Dict, FrozenSet

#: MMEngine registry name (``MODELS.name`` is ``'model'``) -> MMDetection 3.3.0's type names
MMDET_TYPES: Dict[str, FrozenSet[str]] = {
    'data sampler': frozenset({
        'AspectRatioBatchSampler', 'ClassAwareSampler', 'CustomSampleSizeSampler',
        'GroupMultiSourceSampler', 'MultiDataAspectRatioBatchSampler', 'MultiDataSampler',
        'MultiSourceSampler', 'TrackAspectRatioBatchSampler', 'TrackImgSampler'
    }),
    'dataset': frozenset({
        'ADE20KInstanceDataset', 'ADE20KPanopticDataset', 'ADE20KSegDataset', 'BaseDetDataset',
        'BaseSegDataset', 'BaseVideoDataset', 'CityscapesDataset', 'CocoCaptionDataset',
        'CocoDataset', 'CocoPanopticDataset', 'CocoSegDataset', 'ConcatDataset',
        'CrowdHumanDataset', 'DODDataset', 'DSDLDetDataset', 'DeepFashionDataset',
        'Flickr30kDataset', 'LVISDataset', 'LVISV05Dataset', 'LVISV1Dataset',
        'MDETRStyleRefCocoDataset', 'MOTChallengeDataset', 'MultiImageMixDataset', 'ODVGDataset',
        'Objects365V1Dataset', 'Objects365V2Dataset', 'OpenImagesChallengeDataset',
        'OpenImagesDataset', 'ReIDDataset', 'RefCocoDataset', 'V3DetDataset', 'VOCDataset',
        'WIDERFaceDataset', 'XMLDataset', 'YouTubeVISDataset', 'iSAIDDataset'
    }),
    'evaluator': frozenset({
        'MultiDatasetsEvaluator'
    }),
    'hook': frozenset({
        'CheckInvalidLossHook', 'DetVisualizationHook', 'FastStopTrainingHook',
        'GroundingVisualizationHook', 'MeanTeacherHook', 'MemoryProfilerHook',
        'NumClassCheckHook', 'PipelineSwitchHook', 'SetEpochInfoHook', 'SyncNormHook',
        'TrackVisualizationHook', 'YOLOXModeSwitchHook'
    }),
    'loop': frozenset({
        'TeacherStudentValLoop'
    }),
    'metric': frozenset({
        'COCOCaptionMetric', 'CityScapesMetric', 'CocoMetric', 'CocoOccludedSeparatedMetric',
        'CocoPanopticMetric', 'CocoVideoMetric', 'CrowdHumanMetric', 'DODCocoMetric',
        'DumpDetResults', 'DumpODVGResults', 'DumpProposals', 'Flickr30kMetric',
        'LVISFixedAPMetric', 'LVISMetric', 'MOTChallengeMetric', 'OVCocoMetric',
        'OpenImagesMetric', 'ReIDMetrics', 'RefExpMetric', 'RefSegMetric', 'SemSegMetric',
        'VOCMetric', 'YouTubeVISMetric', 'gRefCOCOMetric'
    }),
    'model': frozenset({
        'ATSS', 'ATSSHead', 'ATSSVLFusionHead', 'AnchorFreeHead', 'AnchorHead',
        'AssociativeEmbeddingLoss', 'AutoAssign', 'AutoAssignHead', 'BBoxHead', 'BFP',
        'BalancedL1Loss', 'BaseMOTModel', 'BasePanopticFusionHead', 'BaseReID',
        'BaseSemanticHead', 'BatchFixedSizePad', 'BatchResize', 'BatchSyncRandomResize',
        'BertModel', 'BoundedIoULoss', 'BoxInst', 'BoxInstBboxHead', 'BoxInstDataPreprocessor',
        'BoxInstMaskHead', 'ByteTrack', 'ByteTracker', 'CIoULoss', 'CSPDarknet', 'CSPNeXt',
        'CSPNeXtPAFPN', 'CTResNetNeck', 'CascadeRCNN', 'CascadeRPNHead', 'CascadeRoIHead',
        'CenterNet', 'CenterNetHead', 'CenterNetUpdateHead', 'CentripetalHead', 'ChannelMapper',
        'CoarseMaskHead', 'CondInst', 'CondInstBboxHead', 'CondInstMaskHead', 'ConditionalDETR',
        'ConditionalDETRHead', 'ConvFCBBoxHead', 'CornerHead', 'CornerNet',
        'CrossEntropyCustomLoss', 'CrossEntropyLoss', 'CrowdDet', 'DABDETR', 'DABDETRHead',
        'DDOD', 'DDODHead', 'DDQDETR', 'DDQDETRHead', 'DETR', 'DETRHead', 'DIIHead', 'DINO',
        'DINOHead', 'DIoULoss', 'Darknet', 'DecoupledSOLOHead', 'DecoupledSOLOLightHead',
        'DeepSORT', 'DeformableDETR', 'DeformableDETRHead', 'DetDataPreprocessor', 'DetTTAModel',
        'DetectionTransformer', 'DetectoRS_ResNeXt', 'DetectoRS_ResNet', 'Detectron2Wrapper',
        'DiceLoss', 'DilatedEncoder', 'DistributionFocalLoss', 'DoubleConvFCBBoxHead',
        'DoubleHeadRoIHead', 'DropBlock', 'DyHead', 'DynamicConv', 'DynamicMaskHead',
        'DynamicRoIHead', 'EIoULoss', 'EQLV2Loss', 'EfficientNet', 'EmbeddingRPNHead',
        'ExpMomentumEMA', 'FCNMaskHead', 'FCOS', 'FCOSHead', 'FOVEA', 'FPG', 'FPN', 'FPN_CARAFE',
        'FPN_DropBlock', 'FSAF', 'FSAFHead', 'FastRCNN', 'FasterRCNN', 'FcModule',
        'FeatureRelayHead', 'FocalCustomLoss', 'FocalLoss', 'FoveaHead', 'FreeAnchorRetinaHead',
        'FrozenBN', 'FusedSemanticHead', 'GARPNHead', 'GARetinaHead', 'GFL', 'GFLHead', 'GHMC',
        'GHMR', 'GIoULoss', 'GLIP', 'GaussianFocalLoss', 'GenericRoIExtractor',
        'GlobalAveragePooling', 'GlobalContextHead', 'GridHead', 'GridRCNN', 'GridRoIHead',
        'GroundingDINO', 'GroundingDINOHead', 'GuidedAnchorHead', 'HRFPN', 'HRNet', 'HTCMaskHead',
        'HeuristicFusionHead', 'HourglassNet', 'HybridTaskCascade', 'HybridTaskCascadeRoIHead',
        'IoULoss', 'KnowledgeDistillationKLDivLoss', 'KnowledgeDistillationSingleStageDetector',
        'L1Loss', 'L2Loss', 'LAD', 'LADHead', 'LDHead', 'LearnedPositionalEncoding', 'Linear',
        'LinearReIDHead', 'MSDeformAttnPixelDecoder', 'MSELoss', 'MarginL2Loss', 'Mask2Former',
        'Mask2FormerHead', 'Mask2FormerTrackHead', 'Mask2FormerVideo', 'MaskFormer',
        'MaskFormerFusionHead', 'MaskFormerHead', 'MaskIoUHead', 'MaskPointHead', 'MaskRCNN',
        'MaskScoringRCNN', 'MaskScoringRoIHead', 'MaskTrackRCNN', 'MaskTrackRCNNTracker',
        'MobileNetV2', 'MultiBranchDataPreprocessor', 'MultiInstanceBBoxHead',
        'MultiInstanceRoIHead', 'MultiPosCrossEntropyLoss', 'NASFCOS', 'NASFCOSHead',
        'NASFCOS_FPN', 'NASFPN', 'NormedConv2d', 'NormedLinear', 'OCSORT', 'OCSORTTracker', 'PAA',
        'PAAHead', 'PAFPN', 'PISARetinaHead', 'PISARoIHead', 'PISASSDHead', 'PanopticFPN',
        'PanopticFPNHead', 'PixelDecoder', 'PointRend', 'PointRendRoIHead',
        'PyramidVisionTransformer', 'PyramidVisionTransformerV2', 'QDTrack', 'QualityFocalLoss',
        'QuasiDenseEmbedHead', 'QuasiDenseTrackHead', 'QuasiDenseTracker', 'QueryInst', 'RFP',
        'RPN', 'RPNHead', 'RTMDet', 'RTMDetHead', 'RTMDetInsHead', 'RTMDetInsSepBNHead',
        'RTMDetSepBNHead', 'ReIDDataPreprocessor', 'RegNet', 'RepPointsDetector', 'RepPointsHead',
        'Res2Net', 'ResLayer', 'ResNeSt', 'ResNeXt', 'ResNet', 'ResNetV1d', 'RetinaHead',
        'RetinaNet', 'RetinaSepBNHead', 'RoIEmbedHead', 'RoITrackHead', 'SABLHead',
        'SABLRetinaHead', 'SCNet', 'SCNetBBoxHead', 'SCNetMaskHead', 'SCNetRoIHead',
        'SCNetSemanticHead', 'SIoULoss', 'SOLO', 'SOLOHead', 'SOLOV2Head', 'SOLOv2',
        'SORTTracker', 'SSDHead', 'SSDNeck', 'SSDVGG', 'SSH', 'SeesawLoss', 'SemiBaseDetector',
        'Shared2FCBBoxHead', 'Shared4Conv1FCBBoxHead', 'SiLU', 'SinePositionalEncoding',
        'SinePositionalEncoding3D', 'SingleRoIExtractor', 'SingleStageDetector',
        'SingleStageInstanceSegmentor', 'SmoothL1Loss', 'SoftTeacher', 'SparseRCNN',
        'SparseRoIHead', 'StageCascadeRPNHead', 'StandardRoIHead', 'StrongSORT',
        'StrongSORTTracker', 'SwinTransformer', 'TOOD', 'TOODHead', 'TrackDataPreprocessor',
        'TransformerEncoderPixelDecoder', 'TridentFasterRCNN', 'TridentResNet', 'TridentRoIHead',
        'TripletLoss', 'TwoStageDetector', 'TwoStagePanopticSegmentor', 'VFNet', 'VFNetHead',
        'VarifocalLoss', 'YOLACT', 'YOLACTHead', 'YOLACTProtonet', 'YOLOF', 'YOLOFHead', 'YOLOV3',
        'YOLOV3Head', 'YOLOV3Neck', 'YOLOX', 'YOLOXHead', 'YOLOXPAFPN'
    }),
    'optimizer wrapper constructor': frozenset({
        'LearningRateDecayOptimizerConstructor'
    }),
    'parameter scheduler': frozenset({
        'QuadraticWarmupLR', 'QuadraticWarmupMomentum', 'QuadraticWarmupParamScheduler'
    }),
    'task util': frozenset({
        'ATSSAssigner', 'AnchorGenerator', 'AppearanceFreeLink', 'ApproxMaxIoUAssigner',
        'BBoxL1Cost', 'BboxOverlaps2D', 'BboxOverlaps2D_GLIP', 'BinaryFocalLossCost',
        'BucketingBBoxCoder', 'CameraMotionCompensation', 'CenterRegionAssigner',
        'ClassificationCost', 'CombinedSampler', 'CrossEntropyLossCost', 'DeltaXYWHBBoxCoder',
        'DeltaXYWHBBoxCoderForGLIP', 'DiceCost', 'DistancePointBBoxCoder',
        'DynamicSoftLabelAssigner', 'FocalLossCost', 'GridAssigner', 'HungarianAssigner',
        'InstanceBalancedPosSampler', 'InterpolateTracklets', 'IoUBalancedNegSampler', 'IoUCost',
        'KalmanFilter', 'LegacyAnchorGenerator', 'LegacyDeltaXYWHBBoxCoder',
        'LegacySSDAnchorGenerator', 'MaskPseudoSampler', 'MaxIoUAssigner', 'MlvlPointGenerator',
        'MultiInsRandomSampler', 'MultiInstanceAssigner', 'OHEMSampler', 'PointAssigner',
        'PointGenerator', 'PseudoBBoxCoder', 'PseudoSampler', 'RandomSampler', 'RegionAssigner',
        'SSDAnchorGenerator', 'ScoreHLRSampler', 'SimOTAAssigner', 'TBLRBBoxCoder',
        'TaskAlignedAssigner', 'TopkHungarianAssigner', 'UniformAssigner', 'YOLOAnchorGenerator',
        'YOLOBBoxCoder'
    }),
    'transform': frozenset({
        'Albu', 'AutoAugment', 'AutoContrast', 'BaseFrameSample', 'Brightness', 'CachedMixUp',
        'CachedMosaic', 'Color', 'ColorTransform', 'Contrast', 'CopyPaste', 'Corrupt', 'CutOut',
        'Equalize', 'Expand', 'FilterAnnotations', 'FixScaleResize', 'FixShapeResize',
        'GTBoxSubOne_GLIP', 'GeomTransform', 'ImageToTensor', 'InferencerLoader', 'InstaBoost',
        'Invert', 'LoadAnnotations', 'LoadEmptyAnnotations', 'LoadImageFromNDArray',
        'LoadMultiChannelImageFromFiles', 'LoadPanopticAnnotations', 'LoadProposals',
        'LoadTextAnnotations', 'LoadTrackAnnotations', 'MinIoURandomCrop', 'MixUp', 'Mosaic',
        'MultiBranch', 'PackDetInputs', 'PackReIDInputs', 'PackTrackInputs', 'Pad',
        'PhotoMetricDistortion', 'Posterize', 'ProposalBroadcaster', 'RandAugment',
        'RandomAffine', 'RandomCenterCropPad', 'RandomCrop', 'RandomErasing', 'RandomFlip',
        'RandomFlip_GLIP', 'RandomOrder', 'RandomSamplingNegPos', 'RandomShift', 'Resize',
        'ResizeShortestEdge', 'Rotate', 'SegRescale', 'Sharpness', 'ShearX', 'ShearY', 'Solarize',
        'SolarizeAdd', 'ToTensor', 'TranslateX', 'TranslateY', 'Transpose',
        'UniformRefFrameSample', 'WrapFieldsToLists', 'YOLOXHSVRandomAug'
    }),
    'visualizer': frozenset({
        'DetLocalVisualizer', 'TrackLocalVisualizer'
    }),
}
