"""Checks for `concur compare` (run by CTest, see tools/CMakeLists.txt).

    compare_check.py json   CONCUR [ARGS...]  JSON shape, every workload and model
    compare_check.py python CONCUR [ARGS...]  the same with --python rows
    compare_check.py svg    CONCUR SVG [ARGS...]  the chart is well-formed XML
    compare_check.py task   CONCUR LIB [ARGS...]  --task with a working function
    compare_check.py broken CONCUR LIB FUNCTION NOTE [ARGS...]
                                              a failing task: exit 1, reported
    compare_check.py no-python CONCUR [ARGS...]  python3 missing: rows skipped
    compare_check.py stats  CONCUR LIB        --stats: the pools' statistics
    compare_check.py mpi MPIRUN CONCUR [ARGS...]  under `MPIRUN -np 3`: the
                                              mpi row is measured (rank 0
                                              prints, the others serve)

Only shapes, names, statuses and checksums are checked, never a timing:
the machines are shared and noisy.
"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

WORKLOADS = ['sleep', 'tcp', 'files', 'primes', 'mandelbrot', 'blur']
C_MODELS = ['sequential', 'threads', 'thread_pool', 'process_pool', 'async', 'mpi']
PY_MODELS = ['py_sequential', 'py_thread_pool', 'py_process_pool', 'py_async']
# Small enough for a sanitizer build: a few seconds for the whole run.
SMALL = ['--tasks', '4', '--size', '64', '--latency', '1', '--repeat', '1',
         '--no-progress', '--timeout', '120']


def run(argv, expect, env=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=600)
    sys.stderr.write(p.stderr.decode(errors='replace'))
    if p.returncode != expect:
        sys.exit('exit status %d, expected %d; stdout:\n%s' % (
            p.returncode, expect, p.stdout.decode(errors='replace')))
    return p.stdout.decode(), p.stderr.decode()


def number(v):
    return type(v) in (int, float)


def check_doc(doc, workloads, models, mpi=False):
    assert set(doc) == {'tool', 'version', 'machine', 'options', 'workloads'}, doc.keys()
    m = doc['machine']
    assert type(m['cpus']) is int and m['cpus'] >= 1, m
    for k in ('cpu_model', 'kernel', 'python'):
        assert m[k] is None or isinstance(m[k], str), (k, m)
    assert number(m['memory_gib']), m
    assert len(m['load_average']) == 2, m
    assert [w['name'] for w in doc['workloads']] == workloads, doc['workloads']
    for w in doc['workloads']:
        assert w['kind'] in ('io', 'cpu', 'user'), w
        assert type(w['tasks']) is int and w['tasks'] >= 1, w
        assert isinstance(w['verdict'], str) and w['verdict'], w
        names = [r['model'] for r in w['results']]
        assert names == models, (w['name'], names, models)
        checksums = set()
        for r in w['results']:
            assert isinstance(r['available'], bool) and isinstance(r['ok'], bool), r
            assert r['python'] == r['model'].startswith('py_'), r
            if r['model'] == 'mpi' and not mpi:
                assert not r['available'] and not r['ok'] and r['note'], r
                continue
            assert r['ok'], (w['name'], r)
            for k in ('wall_s', 'speedup', 'cpu_s', 'cpu_utilisation',
                      'peak_mib', 'runs_min_s', 'runs_max_s'):
                assert number(r[k]) and r[k] >= 0, (k, r)
            assert r['others_cpu'] is None or 0 <= r['others_cpu'] <= 1, r
            assert r['wall_s'] > 0, r
            assert type(r['workers']) is int and r['workers'] >= 1, r
            assert type(r['checksum']) is int, r
            checksums.add(r['checksum'])
            if r['model'] == 'sequential':
                assert abs(r['speedup'] - 1) < 1e-3, r
        # Every model, C or Python, computed the same thing.
        assert len(checksums) == 1, (w['name'], checksums)
    return doc


def check_stats(concur, lib):
    """--stats: exact counts in JSON for healthy pools, and in the table
    for a process pool whose worker crashed on one task."""
    out, _ = run([concur, 'compare', '--json', '--stats', '--workload',
                  'primes,sleep', '--model', 'thread_pool,process_pool'] +
                 SMALL, 0)
    doc = json.loads(out)
    for w in doc['workloads']:
        rows = {r['model']: r for r in w['results']}
        assert 'stats' not in rows['sequential'], rows['sequential']
        for m in ('thread_pool', 'process_pool'):
            s = rows[m]['stats']
            assert (s['submitted'], s['completed'], s['failed'],
                    s['cancelled'], s['worker_restarts']) == (4, 4, 0, 0, 0), s
            assert 0 <= s['queued_after_submit'] <= 4, s
        assert type(rows['thread_pool']['stats']['stolen']) is int, rows
        assert rows['process_pool']['stats']['stolen'] is None, rows
    out, _ = run([concur, 'compare', '--stats', '--task', lib + ':crash_on_3',
                  '--model', 'process_pool'] + SMALL + ['--tasks', '8'], 1)
    lines = out.splitlines()
    head = [i for i, l in enumerate(lines)
            if l.split()[:3] == ['pool', 'statistics', 'submitted']]
    assert len(head) == 1, out
    assert lines[head[0]].split()[2:] == ['submitted', 'completed', 'failed',
                                          'cancelled', 'stolen', 'queued',
                                          'restarts'], lines[head[0]]
    row = lines[head[0] + 1].split()
    assert row[0] == 'process_pool', out
    # 8 submitted, 7 completed, 1 failed (its worker crashed), 0 cancelled,
    # no stealing, then the queue's depth, 1 worker replaced.
    assert row[1:6] == ['8', '7', '1', '0', '-'] and row[7] == '1', row
    assert 'restarts:' in out, out


def main():
    mode, concur = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    if mode == 'json':
        out, _ = run([concur, 'compare', '--json'] + SMALL + rest, 0)
        check_doc(json.loads(out), WORKLOADS, C_MODELS)
    elif mode == 'python':
        out, _ = run([concur, 'compare', '--json', '--python'] + SMALL + rest, 0)
        doc = check_doc(json.loads(out), WORKLOADS, C_MODELS + PY_MODELS)
        assert doc['machine']['python'], doc['machine']
    elif mode == 'no-python':
        env = dict(os.environ, CONCUR_PYTHON='/nonexistent/python3')
        out, err = run([concur, 'compare', '--json', '--python',
                        '--workload', 'sleep'] + SMALL + rest, 0, env)
        assert 'python3 not found' in err, err
        doc = json.loads(out)
        rows = {r['model']: r for r in doc['workloads'][0]['results']}
        for m in PY_MODELS:
            assert not rows[m]['available'] and 'python3' in rows[m]['note'], rows[m]
        assert rows['threads']['ok'], rows
    elif mode == 'svg':
        path = rest[0]
        if os.path.exists(path):
            os.unlink(path)
        run([concur, 'compare', '--svg', path] + SMALL + rest[1:], 0)
        root = ET.parse(path).getroot()
        assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag
        ns = {'s': 'http://www.w3.org/2000/svg'}
        texts = ' '.join(t.text or '' for t in root.iter('{%s}text' % ns['s']))
        for w in WORKLOADS:
            assert w in texts, (w, texts)
        for m in ('threads', 'thread_pool', 'process_pool', 'async'):
            assert m in texts, (m, texts)
        bars = root.findall('s:rect', ns)
        assert len(bars) > len(WORKLOADS), len(bars)
        os.unlink(path)
    elif mode == 'task':
        lib = rest[0]
        out, _ = run([concur, 'compare', '--json', '--task', lib + ':spin'] +
                     SMALL + rest[1:], 0)
        doc = check_doc(json.loads(out), ['task'], C_MODELS)
        assert doc['workloads'][0]['function'] == 'spin', doc['workloads'][0]
    elif mode == 'broken':
        lib, fn, note = rest[0], rest[1], rest[2]
        out, _ = run([concur, 'compare', '--json', '--task', lib + ':' + fn] +
                     SMALL + rest[3:], 1)
        doc = json.loads(out)
        for r in doc['workloads'][0]['results']:
            if r['available']:
                assert not r['ok'] and r['note'], r
        rows = {r['model']: r for r in doc['workloads'][0]['results']}
        assert note in rows['process_pool']['note'], rows['process_pool']
    elif mode == 'stats':
        check_stats(concur, rest[0])
    elif mode == 'mpi':
        # concur is the mpirun here; the tool comes after it.
        mpirun, tool = concur, rest[0]
        out, _ = run([mpirun, '--oversubscribe', '-np', '3', tool, 'compare',
                      '--json', '--workload', 'sleep,primes'] + SMALL +
                     rest[1:], 0)
        # One document: only rank 0 prints.
        doc = check_doc(json.loads(out), ['sleep', 'primes'], C_MODELS, True)
        for w in doc['workloads']:
            row = [r for r in w['results'] if r['model'] == 'mpi'][0]
            assert row['available'] and row['ok'] and row['workers'] == 2, row
    else:
        sys.exit('unknown mode ' + mode)
    print('ok')


if __name__ == '__main__':
    main()
