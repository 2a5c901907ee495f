"""What a user gets without tuning, on three models (EfficientNet-Lite0 on photos that packages
ship, the Fashion-MNIST model of :mod:`bench.quality_harness`, the tests' shapes model): the
defaults against every fixed fill and the peers, the pointing game, and the calls each method
needs to a stable top k. The measures are :mod:`bench.quality_defaults`'s.

    .venv/bin/python -m bench.bench_defaults --images 4 --stable-grid 500 1000 2000 4000 \
        --reference-n 8000 --stable-paired-max 2000
"""
import tempfile
import time

from bench import quality_defaults as QD
from bench import quality_harness as H
from bench.bench_speed import run_peers
from bench.report import markdown_table


def main():
    ap = H.parser(__doc__)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-real", action="store_true", help="skip the EfficientNet-Lite0 model")
    ap.add_argument("--defaults-ns", type=int, nargs="+", default=[500, 1000])
    ap.add_argument("--stable-grid", type=int, nargs="+", default=[250, 500, 1000, 2000, 4000])
    ap.add_argument("--reference-n", type=int, default=8000)
    ap.add_argument("--stable-paired-max", type=int, default=None,
                    help="largest N of the paired sampler's time-to-stable rows")
    args = ap.parse_args()
    model, clf, root, data_name, info, _, t0 = H.setup(args)
    workdir = tempfile.mkdtemp(prefix="pxi_bench_defaults_")
    cases = []
    if not args.no_real:
        cases.append(H.real_case(workdir))
    cases.append(H.fmnist_case(model, clf, root, data_name, info, workdir, args))
    cases.append(H.shapes_case(workdir))
    bodies = QD.report(cases, run_peers, workdir, args, markdown_table)
    for title, body in bodies.items():
        body += "\n\nTotal bench time so far %.0f s." % (time.time() - t0)
        H.publish(title, body, args, "bench_defaults")



if __name__ == "__main__":
    main()
