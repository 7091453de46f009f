#!/usr/bin/env python3
"""Where a kernel's warps wait, instruction by instruction, from an Nsight Compute report's SASS source page.

  ncu --set full --import-source yes -o rep node bench/scan-once.js 11 8
  ncu -i rep.ncu-rep --page source --csv --print-source sass > rep.csv
  python3 bench/ncu-stalls.py rep.csv [top N = 25]

Prints the total samples per stall reason, then the N instructions with the most samples (line, samples, its
largest stall reasons, executions, the SASS), so a long CSV (tens of MB) comes back from the GPU machine as a page.
"""
import csv
import sys


def read_rows(path):
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    head = next(i for i, r in enumerate(rows) if 'Source' in r)
    cols = rows[head]
    return cols, [r for r in rows[head + 1:] if len(r) == len(cols)]


def num(v):
    try:
        return float(v.replace(',', ''))
    except ValueError:
        return 0.0


def main():
    path, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25
    cols, rows = read_rows(path)
    src, total = cols.index('Source'), cols.index('Warp Stall Sampling (All Samples)')
    execd = cols.index('Instructions Executed') if 'Instructions Executed' in cols else None
    # each reason has an all-samples column and a '(Not Issued)' one, a subset of it: shown side by side
    stalls = [i for i, c in enumerate(cols) if c.startswith('stall_') and not c.endswith('(Not Issued)')]
    not_issued = {c[:-len(' (Not Issued)')]: i for i, c in enumerate(cols) if c.endswith('(Not Issued)')}
    sums = {cols[i]: sum(num(r[i]) for r in rows) for i in stalls}
    all_samples = sum(num(r[total]) for r in rows)
    print(f'{len(rows)} instructions, {all_samples:.0f} samples: reason, samples, share, of them not issued')
    for name, s in sorted(sums.items(), key=lambda kv: -kv[1]):
        if s > 0:
            ni = sum(num(r[not_issued[name]]) for r in rows) if name in not_issued else 0
            print(f'  {name:24s} {s:9.0f}  {100 * s / max(all_samples, 1):5.1f}%  {ni:9.0f}')
    print(f'\ntop {top} instructions by samples: line samples [largest stalls] executions SASS')
    ranked = sorted(range(len(rows)), key=lambda k: -num(rows[k][total]))[:top]
    for k in sorted(ranked):
        r = rows[k]
        big = sorted(((num(r[i]), cols[i][6:]) for i in stalls), reverse=True)[:3]
        why = ' '.join(f'{n}={v:.0f}' for v, n in big if v > 0)
        ex = f'{num(r[execd]):.0f}' if execd is not None else '-'
        print(f'{k:5d} {num(r[total]):7.0f} [{why}] {ex} {r[src].strip()}')


if __name__ == '__main__':
    main()
