#!/usr/bin/env python3
# The import graph of src/: upward arrows between layers, two-module circles, arrows inside fs.
# Usage: scripts/imports.py [SRC_DIR]
import re, os, sys, collections
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
edges = collections.defaultdict(set)
def modname(path):
    rel = os.path.relpath(path, root)[:-3]
    parts = rel.split('/')
    if parts[-1] == 'mod': parts = parts[:-1]
    return '/'.join(parts)
for dp, dn, fn in os.walk(root):
    for f in fn:
        if not f.endswith('.rs'): continue
        p = os.path.join(dp, f); m = modname(p)
        src = '\n'.join(l for l in open(p).read().split('\n') if not l.strip().startswith('//'))
        # drop test modules
        src = re.split(r'#\[cfg\(test\)\]\s*mod tests', src)[0]
        # `use super::{a, b::C}` and `use crate::{x::Y, z}`: spell each part out in full.
        def expand(m):
            head, body = m.group(1), m.group(2)
            parts = [p.strip() for p in re.split(r',(?![^{]*})', body) if p.strip()]
            return ' '.join(head + '::' + p for p in parts)
        src = re.sub(r'\b(super|crate(?:::[a-z_]+)?)::\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}', expand, src)
        for t in re.findall(r'crate::([a-z_]+)(?:::([a-z_]+))?', src):
            target = t[0] + ('/' + t[1] if t[1] and os.path.exists(os.path.join(root, t[0], t[1] + '.rs')) else '')
            if target != m and not m.startswith(target + '/') : edges[m].add(target)
        base = m if os.path.basename(p) == 'mod.rs' else os.path.dirname(m)
        for t in re.findall(r'super::([a-z_]+)', src):
            target = (base + '/' if base else '') + t
            if os.path.basename(p) != 'mod.rs':
                target = (os.path.dirname(m) + '/' + t) if os.path.dirname(m) else t
            if os.path.exists(os.path.join(root, target + '.rs')) or os.path.isdir(os.path.join(root, target)):
                if target != m: edges[m].add(target)
layer = {'cli':0,'mount':1,'fuse':2,'fs':3,'spool':4,'cache':4,'confluence':5,'allocator':6,'errno':4.5,'markdown':6}
top = lambda m: m.split('/')[0]
up = []; 
for a, bs in edges.items():
    for b in bs:
        la, lb = layer.get(top(a)), layer.get(top(b))
        if top(a) != top(b) and la is not None and lb is not None and lb < la: up.append((a, b))
circles = sorted({tuple(sorted((a, b))) for a, bs in edges.items() for b in bs if a in edges.get(b, set())})
fs_edges = [(a, b) for a, bs in edges.items() for b in bs if a.startswith('fs/') and b.startswith('fs/')]
fs_pairs = {tuple(sorted(e)) for e in fs_edges}
print('upward arrows between layers:', up)
print('two-module circles:', circles)
print('arrows inside fs:', len(fs_edges), 'file pairs:', len(fs_pairs))
