"""How ``release`` and ``verify-release`` print their results: stdout the result (lines or JSON), stderr the
summary and each failure once (:mod:`pipeline.cli.verdicts` decides the exit code)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from pipeline.cli import binary_options as bins
from pipeline.cli.common import print_json
from pipeline.cli.progress import print_plan_table, say
from pipeline.cli.verdicts import Verdict, finish

if TYPE_CHECKING:  # results of the release's core, which loads when a command runs (start-up time)
    from pipeline.release import ReleaseResult, ReleaseVerification


def print_release(result: ReleaseResult, json_output: bool) -> None:
    plan, version = result.plan, result.request.version
    if result.dry_run:
        if json_output:
            print_json(plan.to_json())
        elif sys.stdout.isatty() and not plan.is_empty:
            print_plan_table(plan)
        else:
            print(plan.render_text())
        say(f"dry run: {len(plan.actions)} action(s) planned, nothing written" + plan.unpublished)
    elif json_output:
        print_json(result.to_json())
    elif plan.is_empty:
        print(f"release {version}: already complete, nothing written ({result.pinned})" + plan.unpublished)
    else:
        target = result.desired.target
        print(
            f"release {version}: {len(plan.actions)} action(s) done; vector {result.pinned}; "
            f"{plan.count('sign-image')} image and {plan.count('sign-artifact')} oci artifact signature(s) added"
            + (f"; published on {target}" if target else plan.unpublished)
        )
    say(f"release {version}: {result.summary()}")


def _print_verification(result: ReleaseVerification) -> None:
    for image in result.images:
        pinned = image.label
        if image.ok:
            print(f"ok      {pinned}")
        elif image.problems:
            print(f"FAILED  {pinned}")  # why: once, on stderr (pipeline.cli.verdicts)
        else:
            print(f"UNCHECKED {pinned}")
    for check in result.checks:
        print(f"{'ok    ' if check.ok else 'FAILED'}  release: {check.line()}")
    bins.print_binary_checks(result.binaries)


def report_verification(result: ReleaseVerification, json_output: bool) -> None:
    """The result on stdout (lines or JSON), the summary and each failure on stderr; failures exit 10."""
    failed = [image for image in result.images if image.problems]
    unchecked = [image for image in result.images if image.unchecked is not None and not image.problems]
    artifacts = sum(1 for image in result.images if image.kind != "image")
    if json_output:
        print_json(
            {
                "reference": result.reference,
                "artifact_digest": result.artifact_digest,
                "version": result.version,
                "ok": result.ok,
                "images": [image.to_json() for image in result.images],
                "checks": [check.to_json() for check in result.checks],
                "release_problems": list(result.release_problems),
                "binaries": [binary.to_json() for binary in result.binaries],
                "provenance": result.provenance,
            }
        )
    else:
        _print_verification(result)
    say(
        f"release {result.version or '?'} ({result.reference}@{result.artifact_digest}): vector signature ok; "
        f"{sum(image.ok for image in result.images)} of {len(result.images)} images"
        + (f" (incl. {artifacts} oci artifacts)" if artifacts else "")
        + " ok"
        + (f", {len(unchecked)} could not be checked" if unchecked else "")
        + (f"; {sum(b.ok for b in result.binaries)} of {len(result.binaries)} binaries ok" if result.binaries else "")
        + (f", {unreached} could not be checked" if (unreached := sum(b.unchecked is not None for b in result.binaries))
           else "")
        + (f"; {len(result.release_problems)} release problem(s)" if result.release_problems else "")
    )
    verdicts = [Verdict(i.label, "; ".join(i.problems) or None, i.unchecked) for i in result.images if not i.ok]
    verdicts += [Verdict(problem, problem) for problem in result.release_problems]
    verdicts += [Verdict(b.label, b.problem, b.unchecked) for b in result.binaries if not b.ok]
    hints = [hint for image in failed if image.verification is not None for hint in image.verification.hints]
    hints += [check.hint for check in result.checks if not check.ok and check.hint]
    finish(verdicts, hints)
