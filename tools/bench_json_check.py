"""Checks `concur bench SUITE --json` (run by CTest, see tools/CMakeLists.txt).

    bench_json_check.py SUITE NAME,NAME,...[|NAME,...] CONCUR [ARGS...]

Runs CONCUR with ARGS (its exit status counts too) and checks that its
output is one suite's JSON document whose results are exactly NAME,...
in that order (or one of the lists separated by '|'; an empty one stands
for a suite that skipped itself), each with the keys of the documented
format and positive figures whose speedup is baseline / concur. Never a timing: the machines
are shared and noisy, so a figure's size is no test's business.
"""
import json
import subprocess
import sys

KEYS = {'name', 'unit', 'concur', 'baseline_name', 'baseline', 'speedup'}


def main():
    suite, argv = sys.argv[1], sys.argv[3:]
    expected = [alt.split(',') if alt else [] for alt in sys.argv[2].split('|')]
    out = subprocess.run(argv, stdout=subprocess.PIPE, check=True).stdout
    doc = json.loads(out)
    assert set(doc) == {'suite', 'results'}, doc
    assert doc['suite'] == suite, doc
    names = [r['name'] for r in doc['results']]
    assert names in expected, (names, expected)
    for r in doc['results']:
        assert set(r) == KEYS, r
        for k in ('name', 'unit', 'baseline_name'):
            assert isinstance(r[k], str) and r[k], r
        for k in ('concur', 'baseline', 'speedup'):
            assert type(r[k]) in (int, float) and r[k] > 0, r
        ratio = r['baseline'] / r['concur']
        assert abs(r['speedup'] - ratio) <= 0.01 * ratio, r
    print(' '.join('%s=%.2fx' % (r['name'], r['speedup'])
                   for r in doc['results']) or 'skipped')


if __name__ == '__main__':
    main()
