#!/usr/bin/env python3
"""Which pages of a Go binary a running process has mapped, by section and
by package (issue 17: docs/BENCHMARKS.md, "What a light node costs").

    scripts/binary-pages.py PID BINARY [TOP]

Reads /proc/PID/maps and /proc/PID/pagemap (bit 63: the page is mapped in
PID; needs the right to ptrace PID), then BINARY's sections (readelf -S)
and symbols (`go tool nm -size -sort address`, so run it where `go` is),
and prints the megabytes mapped per mapping and per section, and per
package the bytes of its symbols on mapped pages against the bytes linked,
text and data apart, with the TOP (default 30) largest symbols. BINARY must
be the file PID runs (a non-PIE Go binary: addresses are the symbols')."""
import sys, struct, subprocess, re, collections, os
pid, binary = sys.argv[1], sys.argv[2]
top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
PAGE = 4096
binreal = os.path.realpath(binary)
maps = []
for line in open(f'/proc/{pid}/maps'):
    f = line.split()
    if len(f) >= 6 and (os.path.realpath(f[5]) == binreal or os.path.basename(f[5]) == os.path.basename(binreal)):
        a, b = (int(x, 16) for x in f[0].split('-'))
        maps.append((a, b, f[1], int(f[2], 16)))
resident = set()
with open(f'/proc/{pid}/pagemap', 'rb') as pm:
    for a, b, perm, off in maps:
        n = (b - a) // PAGE
        pm.seek(a // PAGE * 8)
        data = pm.read(n * 8)
        for i in range(n):
            (e,) = struct.unpack_from('<Q', data, i * 8)
            if e >> 63 & 1:
                resident.add(a // PAGE + i)
tot = len(resident) * PAGE
print(f'mappings of the binary ({len(maps)} VMAs), by permissions:')
byperm = collections.defaultdict(lambda: [0, 0])
for a, b, perm, off in maps:
    byperm[perm][0] += b - a
    byperm[perm][1] += sum(1 for p in range(a // PAGE, b // PAGE) if p in resident) * PAGE
for perm, (size, r) in byperm.items():
    print(f'  {perm} {size/2**20:7.2f} MiB, {r/2**20:6.2f} MiB resident')
print(f'resident in the binary mappings: {tot/2**20:.2f} MiB')
# sections
sec = subprocess.run(['readelf', '-SW', binary], capture_output=True, text=True).stdout
secs = []
for m in re.finditer(r'\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)', sec):
    name, addr, size = m.group(1), int(m.group(2), 16), int(m.group(3), 16)
    if addr:
        secs.append((name, addr, size))
print('per section of 64 KiB or more: resident / size')
for name, addr, size in secs:
    r = sum(1 for p in range(addr // PAGE, (addr + size + PAGE - 1) // PAGE) if p in resident)
    if size >= 2**16:
        print(f'  {name:22s} {r*PAGE/2**20:7.2f} / {size/2**20:7.2f} MiB')
# symbols
nm = subprocess.run(['go', 'tool', 'nm', '-size', '-sort', 'address', binary], capture_output=True, text=True).stdout
syms = []
for line in nm.splitlines():
    f = line.split(None, 3)
    if len(f) < 4: continue
    try: addr = int(f[0], 16); size = int(f[1])
    except ValueError: continue
    if addr == 0 or size == 0: continue
    syms.append((addr, size, f[2], f[3]))
def pkg(name):
    n = name
    for pre in ('type:.eq.', 'type:', 'go:itab.', 'go:'):
        if n.startswith(pre):
            if pre == 'go:itab.':
                n = n[len(pre):].lstrip('*')
            elif pre == 'go:':
                return 'go:' + n[3:].split('.')[0]
            else:
                n = n[len(pre):]
            break
    n = n.lstrip('*').lstrip('[]').lstrip('*')
    i = n.rfind('/')
    j = n.find('.', i + 1)
    return n[:j] if j > 0 else n
perpkg = collections.Counter(); perpkg_sz = collections.Counter()
persym = collections.Counter()
kind = collections.Counter()
for addr, size, t, name in syms:
    # bytes of the symbol that lie on resident pages
    r = 0
    p0, p1 = addr // PAGE, (addr + size - 1) // PAGE
    for p in range(p0, p1 + 1):
        if p in resident:
            lo = max(addr, p * PAGE); hi = min(addr + size, (p + 1) * PAGE)
            r += hi - lo
    k = 'text' if t in 'Tt' else 'data' if t in 'RrDdBb' else t
    key = pkg(name)
    perpkg[(k, key)] += r; perpkg_sz[(k, key)] += size
    persym[(k, name)] += r
    kind[k] += r
print('symbol bytes on resident pages by kind:', {k: f'{v/2**20:.2f} MiB' for k, v in kind.items()})
print(f'top {top} packages (text), resident / linked:')
for (k, p), v in sorted(((x, v) for x, v in perpkg.items() if x[0] == 'text'), key=lambda x: -x[1])[:top]:
    print(f'  {v/2**10:8.0f} KiB / {perpkg_sz[(k,p)]/2**10:8.0f} KiB  {p}')
print(f'top {top} packages (data/rodata), resident / linked:')
for (k, p), v in sorted(((x, v) for x, v in perpkg.items() if x[0] == 'data'), key=lambda x: -x[1])[:top]:
    print(f'  {v/2**10:8.0f} KiB / {perpkg_sz[(k,p)]/2**10:8.0f} KiB  {p}')
print(f'top {top} symbols:')
for (k, n), v in persym.most_common(top):
    print(f'  {v/2**10:8.0f} KiB {k} {n}')
