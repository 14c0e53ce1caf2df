#!/usr/bin/env python3
"""Import circles between the files of src/ (issue 18, point 4).

Every `use` and every inline `crate::`/`super::`/`self::` path of a file
(comments, strings and `#[cfg(test)] mod tests` left out) is resolved,
through the `pub use self::...` re-exports of `mod.rs` files, to the file
that defines the item; a re-export itself is structure, not an import.
Prints each circle with its edges; exits 1 when there is one.

    python3 scripts/import-circles.py [src]
"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)[:-3].split(os.sep)
            if rel == ['lib']: mod = ()
            elif rel[-1] == 'mod': mod = tuple(rel[:-1])
            else: mod = tuple(rel)
            files[mod] = p

def code(p):
    out = []
    text = open(p).read()
    # unit tests (`#[cfg(test)] mod tests { use super::*; ... }`) are not the module's imports
    text = re.split(r'#\[cfg\(test\)\]\s*mod \w+', text)[0]
    for line in text.splitlines(True):
        s = line.strip()
        if s.startswith('//'): continue
        out.append(re.sub(r'"(\\.|[^"\\])*"', '""', line.split('//')[0]))
    return ''.join(out)

def absolute(mod, segs):
    # the module a `self` path starts from: mod itself
    base = list(mod)
    out = None
    i = 0
    if segs[0] == 'crate': out = []; i = 1
    elif segs[0] == 'self': out = base[:]; i = 1
    elif segs[0] == 'super':
        out = base[:]
        while i < len(segs) and segs[i] == 'super':
            out = out[:-1]; i += 1
    else:
        return None
    return out + segs[i:]

def expand(tree):
    # tree: text of a use tree without trailing ';'
    tree = tree.strip()
    # split top-level prefix::{...}
    m = tree.find('{')
    if m == -1:
        t = re.sub(r'\s+as\s+\w+$', '', tree)
        return [t.replace(' ', '')]
    prefix = tree[:m].strip()
    inner = tree[m+1:tree.rfind('}')]
    parts, cur, depth = [], '', 0
    for ch in inner:
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
        else: cur += ch
    parts.append(cur)
    out = []
    for part in parts:
        if not part.strip(): continue
        for e in expand(part):
            if e == 'self': out.append(prefix.rstrip(':').rstrip(':'))
            else: out.append(prefix + e)
    return out

reexports = {}  # (mod, name) -> path segs (absolute)
uses = {}
for mod, p in files.items():
    src = code(p)
    paths = []
    for m in re.finditer(r'\b(pub(\([^)]*\))?\s+)?use\s+([^;]+);', src):
        for e in expand(m.group(3)):
            segs = [s for s in e.split('::') if s]
            if not segs: continue
            a = absolute(mod, segs)
            if a is None: continue
            if m.group(1) and segs[0] == 'self':
                # a re-export of a child's item (`pub use self::child::Item`): structure, not an import
                reexports[(mod, re.sub(r'.*\bas\s+', '', e).split('::')[-1])] = a
                continue
            paths.append(a)
            if m.group(1):
                reexports[(mod, segs[-1])] = a
    rest_src = re.sub(r'\b(pub(\([^)]*\))?\s+)?use\s+([^;]+);', '', src)
    for m in re.finditer(r'(?<![\w:])((?:crate|super|self)(?:::\w+)+)', rest_src):
        segs = m.group(1).split('::')
        a = absolute(mod, segs)
        if a: paths.append(a)
    uses[mod] = paths

def resolve(a, seen=0):
    # longest module prefix
    for k in range(len(a), -1, -1):
        if tuple(a[:k]) in files:
            mod = tuple(a[:k]); rest = a[k:]
            break
    if rest and (mod, rest[0]) in reexports and seen < 10:
        return resolve(reexports[(mod, rest[0])] + rest[1:], seen + 1)
    return mod

edges = {m: set() for m in files}
for mod, paths in uses.items():
    for a in paths:
        t = resolve(a)
        if t != mod and t in files:
            edges[mod].add(t)

# Tarjan SCC
index, low, stack, on, sccs = {}, {}, [], set(), []
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = len(index); stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
for v in files:
    if v not in index: strong(v)
for c in sccs:
    names = sorted(files[m] for m in c)
    print('circle:', ' '.join(names))
    for m in c:
        for w in sorted(edges[m] & set(c)):
            print('   ', files[m], '->', files[w])
print(f'{len(sccs)} import circle(s) among {len(files)} files')
sys.exit(1 if sccs else 0)
