"""How ``fill='auto'``'s rule was set, on images the reported sections never use
(:mod:`bench.quality_fill_rule`).

    .venv/bin/python -m bench.bench_fill_rule
"""
import tempfile
import time

from bench import quality_fill_rule as QF
from bench import quality_harness as H
from bench.report import markdown_table


def main():
    ap = H.parser(__doc__)
    ap.add_argument("--no-real", action="store_true", help="skip the EfficientNet-Lite0 model")
    args = ap.parse_args()
    _, clf, root, _, _, _, t0 = H.setup(args)
    workdir = tempfile.mkdtemp(prefix="pxi_bench_fill_")
    cases = {"shapes": H.shapes_case(workdir)}
    if not args.no_real:
        cases["real"] = H.real_case(workdir)
    for title, body in QF.tune_fill(clf, root, cases, markdown_table).items():
        body += "\n\nTotal bench time %.0f s." % (time.time() - t0)
        H.publish(title, body, args, "bench_fill_rule")



if __name__ == "__main__":
    main()
