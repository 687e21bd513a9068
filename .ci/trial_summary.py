"""Read trial's output on stdin, echo it, and end with the line `N passed, N failed`."""

import re
import sys

last = ""
for line in sys.stdin:
    sys.stdout.write(line)
    sys.stdout.flush()
    if line.startswith(("PASSED", "FAILED")):
        last = line

counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", last)}
passed = counts.get("successes", 0)
failed = sum(counts.get(k, 0) for k in ("failures", "errors", "unexpectedSuccesses"))
skipped = counts.get("skips", 0) + counts.get("expectedFailures", 0)
if not last:
    failed = max(failed, 1)  # trial never reached its summary: that is a failure
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or not passed else 0)
