"""i-CLEVR recipe search, 2026-12-06 (results/recipe_iclevr.md, "An auxiliary classifier head"): the notebook's own
Generator, Discriminator, hinge losses, optimisers and generate (loaded from extra/cgan_iclevr.ipynb), the SN arm
(no self-attention), with an optional AC-GAN head on D: a linear layer on D's pooled features predicting the 24-hot
condition, trained with BCE on real scenes (D) and on fakes (G), weight --aux. Scored after every epoch by the
project's evaluator (helpers.iclevr.evaluator), 8 samples per condition of test.json and new_test.json, like the
notebook. Scratch, kept as the record; e.g.

    GANLAB_DATA=../../../shared/data OMP_NUM_THREADS=1 python search_aux.py --aux 1 --epochs 10
"""
import argparse, json, sys, time
from dataclasses import replace
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
from torch import nn
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from helpers.course.notebook_code import load_definitions
from helpers.data import TensorBatcher
from helpers.iclevr.data import encode_conditions, load_iclevr, load_test_conditions
from helpers.iclevr.evaluator import evaluate, load_evaluator
from helpers.sampling import mark_trained

p = argparse.ArgumentParser()
p.add_argument("--aux", type=float, default=0.0); p.add_argument("--epochs", type=int, default=10)
p.add_argument("--attention", type=int, default=0); p.add_argument("--tag", default="")
a = p.parse_args()
nb = load_definitions(ROOT / "extra" / "cgan_iclevr.ipynb")
cfg = replace(nb.Config(), self_attention=bool(a.attention))
nb.cfg, nb.device = cfg, torch.device("cpu")
torch.manual_seed(cfg.seed)
images, y_all = load_iclevr(image_size=cfg.image_size)
x_all = images.float() / 127.5 - 1
G, D = nb.Generator(cfg), nb.Discriminator(cfg)
head = nb.sn(nn.Linear(D.linear.in_features, 24), cfg.spectral_norm)
opt_G, opt_D = nb.make_optimizers(G, D, cfg)
opt_D.add_param_group({"params": head.parameters()})


pooled = []  # D's pooled features (B, C), the input of D.linear, caught by a hook during D's own forward
D.linear.register_forward_pre_hook(lambda module, args: pooled.append(args[0]))


def d_out(x, y):  # the notebook's D(x, y) and the head's logits on the same pooled features
    pooled.clear()
    score = D(x, y)
    return score, head(pooled[0])


ev = load_evaluator("cpu")
tests = {k: np.asarray(encode_conditions(load_test_conditions(k))).repeat(8, 0) for k in ("test", "new_test")}
batches = TensorBatcher((x_all, y_all), batch_size=cfg.batch_size, drop_last=True)
nb.G = G
t0 = time.process_time()
for epoch in range(1, a.epochs + 1):
    for x_real, y in batches:
        z = torch.randn(x_real.shape[0], cfg.latent_dim)
        x_fake = G(z, y)
        s_real, c_real = d_out(x_real, y)
        s_fake, _ = d_out(x_fake.detach(), y)
        loss_D = nb.d_loss_hinge(s_real, s_fake)
        if a.aux:
            loss_D = loss_D + a.aux * F.binary_cross_entropy_with_logits(c_real, y)
        opt_D.zero_grad(set_to_none=True); loss_D.backward(); opt_D.step()
        s_fake, c_fake = d_out(x_fake, y)
        loss_G = nb.g_loss_hinge(s_fake)
        if a.aux:
            loss_G = loss_G + a.aux * F.binary_cross_entropy_with_logits(c_fake, y)
        opt_G.zero_grad(set_to_none=True); loss_G.backward(); opt_G.step()
    mark_trained(G)
    acc = {k: evaluate(torch.from_numpy(nb.generate(len(yk), yk, seed=5)), yk, ev) for k, yk in tests.items()}
    print(json.dumps({"tag": a.tag, "aux": a.aux, "attention": a.attention, "epoch": epoch,
                      "cpu_s": round(time.process_time() - t0), "test": round(acc["test"], 3),
                      "new_test": round(acc["new_test"], 3)}), flush=True)
