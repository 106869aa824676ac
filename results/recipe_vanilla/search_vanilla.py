"""Recipe search of the vanilla lab, 2026-12-06 (results/recipe_vanilla_quick.md, second table).

The notebook's own Generator and Discriminator (loaded from lab8_vanilla.ipynb), BCE losses, Adam, an EMA of G,
one variant per run set by flags; prints, at each --evals point (in epochs), the share of 2,000 samples the
project's MNIST classifier recognises with confidence >= 0.9, for: G_ema as the notebook samples it / G_ema with
its BatchNorm statistics recomputed / G itself / G_ema with batch statistics. Scratch, kept as the record; e.g.

    GANLAB_DATA=../../../shared/data OMP_NUM_THREADS=1 python search_vanilla.py --tag g2 --gsteps 2
"""
import argparse, copy, json, math, sys, time
import torch, torch.nn.functional as F
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from helpers.course.notebook_code import load_definitions
from helpers.data import load_mnist, TensorBatcher
from helpers.models import dcgan_init
from helpers.training import EMA
from helpers.classifiers import load_classifier, classify
from helpers.metrics import confident_fraction
from helpers.sampling import seeded_noise

p = argparse.ArgumentParser()
p.add_argument("--tag", required=True)
p.add_argument("--g", type=int, default=16); p.add_argument("--d", type=int, default=32)
p.add_argument("--bs", type=int, default=128); p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--lrd", type=float, default=None)
p.add_argument("--b1", type=float, default=0.5); p.add_argument("--b2", type=float, default=0.99)
p.add_argument("--ema", type=float, default=0.999)
p.add_argument("--epochs", type=float, default=2); p.add_argument("--evals", type=str, default="0.5,1,1.5,2")
p.add_argument("--topk", type=float, default=1.0, help="final fraction of fakes kept in G's loss (annealed linearly)")
p.add_argument("--smooth", type=float, default=1.0, help="real label for D (one-sided smoothing)")
p.add_argument("--gsteps", type=int, default=1)
p.add_argument("--decay_last", type=float, default=0.0, help="fraction of training at the end with lr cosine to 0")
p.add_argument("--latent", type=int, default=100)
p.add_argument("--arch", default="nb")
p.add_argument("--dsn", type=int, default=0, help="D without BatchNorm, spectral norm on every layer")
p.add_argument("--same_batch", type=int, default=0, help="D sees real+fake in one BN batch")
a = p.parse_args()
lrd = a.lrd or a.lr
nb = load_definitions(__import__("pathlib").Path(__file__).resolve().parents[2] / "lab8_vanilla.ipynb")
torch.manual_seed(0)
from torch import nn
class GUp(nn.Module):
    def __init__(self, latent, w, deep=False, up=True):
        super().__init__(); self.w = w
        self.project = nn.Sequential(nn.Linear(latent, 4*w*49, bias=False), nn.BatchNorm1d(4*w*49), nn.ReLU(True))
        def block(ci, co):
            if up:
                L = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ci, co, 3, padding=1, bias=False)]
            else:
                L = [nn.ConvTranspose2d(ci, co, 4, 2, 1, bias=False)]
            L += [nn.BatchNorm2d(co), nn.ReLU(True)]
            if deep:
                L += [nn.Conv2d(co, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU(True)]
            return L
        self.net = nn.Sequential(*block(4*w, 2*w), *block(2*w, w), nn.Conv2d(w, 1, 3, padding=1), nn.Tanh())
    def forward(self, z):
        return self.net(self.project(z).view(-1, 4*self.w, 7, 7))
def make_D():
    if not a.dsn: return nb.Discriminator(a.d)
    sn = nn.utils.parametrizations.spectral_norm
    w = a.d
    net = nn.Sequential(sn(nn.Conv2d(1, w, 4, 2, 1)), nn.LeakyReLU(0.2, True),
                        sn(nn.Conv2d(w, 2*w, 4, 2, 1)), nn.LeakyReLU(0.2, True),
                        sn(nn.Conv2d(2*w, 4*w, 3, 2, 1)), nn.LeakyReLU(0.2, True),
                        nn.Flatten(), sn(nn.Linear(4*w*16, 1)))
    class DS(nn.Module):
        def __init__(self): super().__init__(); self.net = net
        def forward(self, x): return self.net(x).view(-1)
    return DS()
def make_G():
    if a.arch == "nb": return nb.Generator(a.latent, a.g)
    if a.arch == "up": return GUp(a.latent, a.g, deep=False, up=True)
    if a.arch == "updeep": return GUp(a.latent, a.g, deep=True, up=True)
    if a.arch == "deep": return GUp(a.latent, a.g, deep=True, up=False)
x, _ = load_mnist()
G = make_G().to(memory_format=torch.channels_last).apply(dcgan_init)
D = make_D().to(memory_format=torch.channels_last).apply(dcgan_init)
oG = torch.optim.Adam(G.parameters(), lr=a.lr, betas=(a.b1, a.b2))
oD = torch.optim.Adam(D.parameters(), lr=lrd, betas=(a.b1, a.b2))
G_ema = EMA(G, a.ema)
judge = load_classifier("mnist"); jz = seeded_noise(2000, a.latent, 99, "cpu")
batches = TensorBatcher((x,), a.bs, drop_last=True, generator=torch.Generator().manual_seed(0))
spe = len(batches); total = int(a.epochs * spe)
evals = sorted(int(float(e) * spe) for e in a.evals.split(","))
def recal(model, num_batches=20):
    m = copy.deepcopy(model.module)
    for mod in m.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats(); mod.momentum = None
    m.train()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _ in range(num_batches):
            m(torch.randn(256, a.latent, generator=g))
    return m.eval()
def score():
    with torch.no_grad():
        G_ema.eval(); _, p1 = classify(judge, G_ema(jz)); G_ema.train()
        m = recal(G_ema); _, p2 = classify(judge, m(jz))
        G.eval(); _, p3 = classify(judge, G(jz)); G.train()
        m.train(); _, p4 = classify(judge, torch.cat([m(c) for c in jz.split(256)]))
    return [confident_fraction(p) for p in (p1, p2, p3, p4)]
step = 0; t0 = time.process_time(); out = []
decay_start = int(total * (1 - a.decay_last))
while step < total:
    for (xr,) in batches:
        if step >= total: break
        if step >= decay_start and a.decay_last > 0:
            f = 0.5 * (1 + math.cos(math.pi * (step - decay_start) / (total - decay_start)))
            for o, base in ((oG, a.lr), (oD, lrd)):
                for g in o.param_groups: g["lr"] = base * f
        B = xr.shape[0]
        z = torch.randn(B, a.latent)
        xf = G(z)
        if a.same_batch:
            lo = D(torch.cat([xr, xf.detach()])); lr_, lf = lo[:B], lo[B:]
        else:
            lr_ = D(xr); lf = D(xf.detach())
        if a.smooth == 1.0:
            lD = nb.d_loss_bce(lr_, lf)
        else:  # the notebook's d_loss_bce with D's target for real digits lowered to a.smooth
            lD = F.binary_cross_entropy_with_logits(lr_, torch.full_like(lr_, a.smooth)) + \
                 F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
        oD.zero_grad(set_to_none=True); lD.backward(); oD.step()
        for gs in range(a.gsteps):
            if gs > 0:
                xf = G(torch.randn(B, a.latent))
            lf = D(xf)
            frac = 1.0 - (1.0 - a.topk) * step / total
            if frac < 1.0:
                k = max(1, int(frac * B)); lf = lf.topk(k).values
            lG = nb.g_loss_bce(lf)
            oG.zero_grad(set_to_none=True); lG.backward(); oG.step()
        G_ema.update(G)
        step += 1
        if step in evals:
            s = score(); out.append((step * a.bs, [round(v * 100, 1) for v in s], round(time.process_time() - t0)))
            print(a.tag, step / spe, "ema/ema-recal/G/ema-trainBN", " ".join(f"{v:.1%}" for v in s), f"cpu {time.process_time()-t0:.0f}s", flush=True)
print("RESULT", json.dumps({"tag": a.tag, "args": vars(a), "points": out}), flush=True)
