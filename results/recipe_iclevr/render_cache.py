"""Renders train.json at 32 and 64 px into x32.npy, x64.npy and y.npy (the recipe search's cache).
Scratch, kept as the record of the search."""
import json, numpy as np, sys
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[2]))
from helpers.iclevr.render import render_entries, OBJECTS
e = json.load(open(__import__('os').path.join(__import__('os').environ.get('GANLAB_DATA', '../shared/data'), 'iclevr_meta', 'train.json')))
items = list(e.items())
idx = {n: i for i, n in enumerate(OBJECTS)}
y = np.zeros((len(items), 24), np.float32)
for i, (_, objs) in enumerate(items):
    for o in objs: y[i, idx[o]] = 1
np.save('y.npy', y)
for s in (32, 64):
    x = render_entries(items, s)
    np.save(f'x{s}.npy', x.transpose(0, 3, 1, 2).copy())
    print(s, 'done', flush=True)
