"""``make synth-check``: the synthesis regression guard CI runs.

Synthesizes and places the small configurations in ``synth/baseline.json`` with one seed each
(the same seed as the baseline, so an unchanged design gives the same figures) and fails when
Fmax drops more than 10% or LUT4 / FF / DSP / BRAM grow more than 10% against the baseline.
After an intended change, ``python -m synth.check --update`` records the new figures; commit
them with the change that explains them.
"""

import argparse
import json
import sys
from pathlib import Path

from synth.run import log, run, write_reports

BASELINE = Path(__file__).resolve().parent / "baseline.json"
TOLERANCE = 0.10
AREA = ("lut4", "ff", "dsp", "bram")


def regressions(measured, baseline, tolerance=TOLERANCE):
    """What got worse by more than ``tolerance``: a list of messages (empty when none)."""
    found = []
    for key in AREA:
        if key in baseline and measured[key] > baseline[key] * (1 + tolerance):
            found.append(f"{key} grew from {baseline[key]} to {measured[key]} "
                         f"(+{measured[key] / baseline[key] - 1:.0%}, limit +{tolerance:.0%})")
    fmax, reference = measured["fmax_mhz"], baseline.get("fmax_mhz", 0)
    if fmax < reference * (1 - tolerance):
        found.append(f"Fmax dropped from {reference} to {fmax} MHz "
                     f"({fmax / reference - 1:.0%}, limit -{tolerance:.0%})")
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true",
                        help="record the measured figures as the new baseline")
    args = parser.parse_args(argv)
    baseline = json.loads(BASELINE.read_text())
    failed = False
    for name, expected in baseline.items():
        options = argparse.Namespace(n=expected["n"], device=expected["device"],
                                     design=expected["design"], speed=expected["speed"],
                                     seeds=1, jobs=1)
        measured_name, entry = run(options)
        write_reports(measured_name, entry)
        measured = {key: entry[key] for key in AREA}
        measured["fmax_mhz"] = entry["fmax_mhz"]["median"]
        problems = regressions(measured, expected)
        figures = ", ".join(f"{key} {measured[key]} (baseline {expected.get(key, '-')})"
                            for key in (*AREA, "fmax_mhz"))
        log(f"[synth-check] {name}: {figures}")
        for problem in problems:
            log(f"[synth-check] {name}: REGRESSION: {problem}")
        failed |= bool(problems)
        if args.update:
            baseline[name] = {**expected, **measured}
    if args.update:
        BASELINE.write_text(json.dumps(baseline, indent=2) + "\n")
        log(f"[synth-check] baseline updated: {BASELINE}")
        return 0
    log("[synth-check] " + ("FAILED" if failed else "no regression beyond 10%"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
