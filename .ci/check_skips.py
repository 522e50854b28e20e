"""Fail CI when a test skipped that is not on the allow-list.

Usage: python3 .ci/check_skips.py JUNIT_XML ALLOW_LIST

JUNIT_XML is pytest's ``--junitxml`` report; ALLOW_LIST holds one test id a line
(``tests/test_x/test_y.py::test_name``, ``#`` starts a comment): the tests that may skip,
those that need a GPU. A missing dependency or a broken import must fail the suite, so any
other skip is a failure. Standard library only: it runs with any python3.
"""
import sys
import xml.etree.ElementTree as ET
from typing import List, Set, Tuple


def skipped_tests(junit_xml: str) -> List[Tuple[str, str]]:
    """(test id, reason) of every skipped test in a pytest junit report.

    The id is rebuilt from junit's dotted ``classname`` (``tests.test_x.test_y`` or
    ``tests.test_x.test_y.TestClass``) as ``tests/test_x/test_y.py::[TestClass::]name``.
    """
    out = []
    for case in ET.parse(junit_xml).getroot().iter('testcase'):
        skip = case.find('skipped')
        if skip is None:
            continue
        parts = case.get('classname', '').split('.')
        # a test class is CamelCase; module and package names are not
        classes = []
        while parts and parts[-1][:1].isupper():
            classes.insert(0, parts.pop())
        test_id = '::'.join(['/'.join(parts) + '.py', *classes, case.get('name', '')])
        out.append((test_id, skip.get('message', '')))
    return out


def read_allow_list(path: str) -> Set[str]:
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return {line for line in lines if line}


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    junit_xml, allow_list = argv
    allowed = read_allow_list(allow_list)
    skipped = skipped_tests(junit_xml)
    unexpected = [(t, why) for t, why in skipped if t not in allowed]
    print(f'{len(skipped)} skipped, {len(skipped) - len(unexpected)} of them on the allow-list '
          f'({allow_list})')
    if unexpected:
        print(f'FAILED: {len(unexpected)} tests skipped that must run here (a missing '
              'dependency or a broken import is a failure, not a skip):', file=sys.stderr)
        for test_id, why in unexpected:
            print(f'  {test_id}: {why}', file=sys.stderr)
        print(f'Fix the cause, or, for a test that needs hardware this machine lacks, add '
              f'its id to {allow_list}.', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
