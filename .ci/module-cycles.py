#!/usr/bin/env python3
"""Module import cycles of the edge crate, at the level of its top-level modules."""
import os,re,collections,sys
root=sys.argv[1] if len(sys.argv)>1 else 'edge-agent/src'
skip={'lib.rs','main.rs','command.rs'}
mods=[m[:-3] if m.endswith('.rs') else m for m in os.listdir(root) if m not in skip]
deps=collections.defaultdict(set)
for m in mods:
    p=os.path.join(root,m)
    paths=[os.path.join(d,f) for d,_,fs in os.walk(p) for f in fs if f.endswith('.rs')] if os.path.isdir(p) else [p+'.rs']
    for f in paths:
        if '/tests' in f or f.endswith('tests.rs'): continue
        s=re.sub(r'#\[cfg\(test\)\]\s*mod tests \{.*','',open(f).read(),flags=re.S)
        s=re.sub(r'//.*','',s)
        found=set(re.findall(r'crate::(\w+)', s))
        for block in re.findall(r'use crate::\{(.*?)\};', s, flags=re.S):
            found|=set(re.findall(r'(?:^|[\s,{])(\w+)(?=::|\s*,|\s*$|\s*\})', block))
        deps[m]|={t for t in found if t!=m and t in mods}
for m in sorted(deps): print(f"{m} -> {', '.join(sorted(deps[m]))}")
cyc=[]
for a in deps:
    for b in deps[a]:
        stack=[(b,[a,b])]; seen=set()
        while stack:
            n,path=stack.pop()
            if n==a: cyc.append(path); continue
            if n in seen: continue
            seen.add(n)
            stack+=[(c,path+[c]) for c in deps.get(n,())]
print(f"cycles: {len(cyc)}")
for c in sorted(cyc,key=len)[:10]: print('  '+' -> '.join(c))
sys.exit(1 if cyc else 0)
