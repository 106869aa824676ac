"""Recipe search of the iclevr lab (results/recipe_iclevr.md): one GAN variant, trained for --minutes of CPU time
(time.process_time, one thread), scored every --eval_every CPU seconds by the proxy evaluator on 4 samples of each
condition of test.json and new_test.json. Run from this folder after render_cache.py and proxy_eval.py:

    OMP_NUM_THREADS=1 python search_gan.py --tag G --minutes 4 --eval_every 40 --lr_g 1e-3 --lr_d 1e-3 --beta1 0.5 --bs 32

A scratch script kept as the record of the search (not course code, not tested).
"""
import argparse, json, time, numpy as np, torch, torch.nn as nn, torch.nn.functional as F, sys
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[2])); sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parent))
from helpers.iclevr.render import OBJECTS
p = argparse.ArgumentParser()
p.add_argument('--size', type=int, default=32); p.add_argument('--ch', type=int, default=32)
p.add_argument('--sn', type=int, default=1); p.add_argument('--attn', type=int, default=0)
p.add_argument('--loss', default='hinge'); p.add_argument('--aux', type=float, default=0.0)
p.add_argument('--lr_g', type=float, default=2e-4); p.add_argument('--lr_d', type=float, default=2e-4)
p.add_argument('--beta1', type=float, default=0.0); p.add_argument('--bs', type=int, default=64)
p.add_argument('--minutes', type=float, default=5); p.add_argument('--eval_every', type=float, default=60)
p.add_argument('--cbn', type=int, default=1); p.add_argument('--proj', type=int, default=1)
p.add_argument('--bn_d', type=int, default=0); p.add_argument('--seed', type=int, default=0)
p.add_argument('--z', type=int, default=64); p.add_argument('--tag', default='')
p.add_argument('--ema', type=float, default=0.0); p.add_argument('--arch', default='convt'); p.add_argument('--gch', type=int, default=64); p.add_argument('--threads', type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
idx = {n: i for i, n in enumerate(OBJECTS)}
def enc(lst):
    y = torch.zeros(len(lst), 24)
    for i, objs in enumerate(lst):
        for o in objs: y[i, idx[o]] = 1
    return y
x_all = torch.from_numpy(np.load(f'x{a.size}.npy')); y_all = torch.from_numpy(np.load('y.npy'))
N = len(x_all)
SN = (lambda m: nn.utils.spectral_norm(m)) if a.sn else (lambda m: m)
class Attn(nn.Module):
    def __init__(s, c, sn=lambda m: m):
        super().__init__()
        s.q = sn(nn.Conv2d(c, c//8, 1)); s.k = sn(nn.Conv2d(c, c//8, 1)); s.v = sn(nn.Conv2d(c, c, 1))
        s.gamma = nn.Parameter(torch.zeros(()))
    def forward(s, x):
        B, C, H, W = x.shape
        q = s.q(x).flatten(2).transpose(1, 2); k = s.k(x).flatten(2); v = s.v(x).flatten(2)
        att = torch.softmax(q @ k, -1)            # (B, HW, HW)
        o = (v @ att.transpose(1, 2)).view(B, C, H, W)
        return x + s.gamma * o
class CBN(nn.Module):
    def __init__(s, c):
        super().__init__(); s.bn = nn.BatchNorm2d(c, affine=not a.cbn)
        if a.cbn: s.g = nn.Linear(24, c); s.b = nn.Linear(24, c); nn.init.zeros_(s.g.weight); nn.init.ones_(s.g.bias); nn.init.zeros_(s.b.weight); nn.init.zeros_(s.b.bias)
    def forward(s, x, y):
        h = s.bn(x)
        if a.cbn: h = h * s.g(y)[:, :, None, None] + s.b(y)[:, :, None, None]
        return h
class G(nn.Module):
    def __init__(s):
        super().__init__(); c = a.ch
        nb = {32: 3, 64: 4}[a.size]
        chans = [c*8, c*4, c*2, c, c][:nb+1] if a.size == 64 else [c*4, c*2, c, c]
        s.fc = nn.Linear(a.z + 24, chans[0]*16)
        s.bns = nn.ModuleList(); s.convs = nn.ModuleList()
        for i in range(nb):
            s.bns.append(CBN(chans[i])); s.convs.append(nn.Conv2d(chans[i], chans[i+1], 3, 1, 1))
        s.attn_at = nb - 2  # after block giving 16x16 (32px) / 32x32? -> use 16x16
        if a.size == 64: s.attn_at = nb - 3
        s.attn = Attn(chans[s.attn_at+1]) if a.attn else None
        s.out_bn = CBN(chans[nb]); s.out = nn.Conv2d(chans[nb], 3, 3, 1, 1); s.c0 = chans[0]
    def forward(s, z, y):
        h = s.fc(torch.cat([z, y], 1)).view(-1, s.c0, 4, 4)
        for i in range(len(s.convs)):
            h = s.convs[i](F.interpolate(F.relu(s.bns[i](h, y)), scale_factor=2))
            if s.attn is not None and i == s.attn_at: h = s.attn(h)
        return torch.tanh(s.out(F.relu(s.out_bn(h, y))))
class GT(nn.Module):
    def __init__(s):
        super().__init__(); c = a.gch
        nb = {32: 3, 64: 4}[a.size]
        chans = [c // (2 ** i) for i in range(nb)] + [3]
        s.c0 = chans[0]
        s.fc = nn.Linear(a.z + 24, chans[0] * 16)
        s.bns = nn.ModuleList(CBN(chans[i]) for i in range(nb)); s.ups = nn.ModuleList(nn.ConvTranspose2d(chans[i], chans[i+1], 4, 2, 1) for i in range(nb))
        s.attn_at = nb - 3   # after the block that outputs 16x16 at 32px
        s.attn = Attn(chans[s.attn_at + 1]) if a.attn else None
    def forward(s, z, y):
        h = s.fc(torch.cat([z, y], 1)).view(-1, s.c0, 4, 4)
        for i in range(len(s.ups)):
            h = s.ups[i](F.relu(s.bns[i](h, y)))
            if s.attn is not None and i == s.attn_at: h = s.attn(h)
        return torch.tanh(h)
class D(nn.Module):
    def __init__(s):
        super().__init__(); c = a.ch
        chans = [3, c, c*2, c*4] if a.size == 32 else [3, c, c*2, c*4, c*8]
        s.convs = nn.ModuleList(); s.bns = nn.ModuleList()
        for i in range(len(chans)-1):
            s.convs.append(SN(nn.Conv2d(chans[i] + (24 if (i == 0 and not a.proj) else 0), chans[i+1], 4, 2, 1)))
            s.bns.append(nn.BatchNorm2d(chans[i+1]) if (a.bn_d and i > 0) else nn.Identity())
        s.attn = Attn(chans[1], SN) if a.attn else None
        s.lin = SN(nn.Linear(chans[-1], 1)); s.emb = SN(nn.Linear(24, chans[-1], bias=False))
        if a.aux: s.cls = SN(nn.Linear(chans[-1], 24))
    def forward(s, x, y):
        h = x
        if not a.proj: h = torch.cat([h, y[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], 1)
        for i in range(len(s.convs)):
            h = F.leaky_relu(s.bns[i](s.convs[i](h)), 0.2)
            if s.attn is not None and i == 0: h = s.attn(h)
        h = h.sum((2, 3))
        out = s.lin(h).view(-1)
        if a.proj: out = out + (s.emb(y) * h).sum(1)
        cls = s.cls(h) if a.aux else None
        return out, cls
g, d = (GT() if a.arch == 'convt' else G()), D()
import copy
g_ema = copy.deepcopy(g) if a.ema else g
og = torch.optim.Adam(g.parameters(), a.lr_g, betas=(a.beta1, 0.999 if a.beta1 > 0 else 0.9))
od = torch.optim.Adam(d.parameters(), a.lr_d, betas=(a.beta1, 0.999 if a.beta1 > 0 else 0.9))
from proxy_eval import Net, acc
ev = Net(); ev.load_state_dict(torch.load('proxy_eval.pt')); ev.eval()
tests = {k: enc(json.load(open(__import__('os').path.join(__import__('os').environ.get('GANLAB_DATA', '../shared/data'), 'iclevr_meta', f'{k}.json')))) for k in ('test', 'new_test')}
def evaluate():
    g_ema.eval(); out = {}
    with torch.no_grad():
        for k, y in tests.items():
            gen = torch.Generator().manual_seed(123)
            yy = y.repeat(4, 1); z = torch.randn(len(yy), a.z, generator=gen)
            img = (g_ema(z, yy) + 1) / 2
            out[k] = acc(ev(img), yy)
    g_ema.train(); return out
print(vars(a), flush=True)
t0 = time.process_time(); w0 = time.time(); step = 0; last = 0; evt = 0.0
while True:
    b = torch.randint(0, N, (a.bs,))
    xr = x_all[b].float() / 127.5 - 1; yr = y_all[b]
    z = torch.randn(a.bs, a.z)
    xf = g(z, yr)
    sr, cr = d(xr, yr); sf, _ = d(xf.detach(), yr)
    if a.loss == 'hinge': ld = F.relu(1 - sr).mean() + F.relu(1 + sf).mean()
    else: ld = F.softplus(-sr).mean() + F.softplus(sf).mean()
    if a.aux: ld = ld + a.aux * F.binary_cross_entropy_with_logits(cr, yr)
    od.zero_grad(set_to_none=True); ld.backward(); od.step()
    sf, cf = d(xf, yr)
    lg = -sf.mean() if a.loss == 'hinge' else F.softplus(-sf).mean()
    if a.aux: lg = lg + a.aux * F.binary_cross_entropy_with_logits(cf, yr)
    og.zero_grad(set_to_none=True); lg.backward(); og.step()
    if a.ema:
        with torch.no_grad():
            for pe, pg in zip(g_ema.parameters(), g.parameters()): pe.lerp_(pg, 1 - a.ema)
            for be, bg in zip(g_ema.buffers(), g.buffers()): be.copy_(bg)
    step += 1
    el = time.process_time() - t0 - evt
    if el - last >= a.eval_every * 1 or el >= a.minutes * 60:
        te = time.process_time(); r = evaluate(); evt += time.process_time() - te; last = el
        print(f'{a.tag} step {step} wall {time.time()-w0:.0f} cpu_s {el:.0f} s/step {el/step:.3f} test {r["test"]:.3f} new_test {r["new_test"]:.3f} ld {ld.item():.3f} lg {lg.item():.3f}', flush=True)
        if el >= a.minutes * 60: break
torch.save(g_ema.state_dict(), f'g_{a.tag}.pt')
