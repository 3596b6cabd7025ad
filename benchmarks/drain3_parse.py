"""The plain drain3 script `logml parse` is measured against: read lines, mine templates
with drain3's example configuration, write line_no,cluster_id,template CSV."""
import csv
import sys

from logml.baseline import drain3_miner


def main(path: str) -> None:
    miner = drain3_miner()
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["line_no", "template_id", "template"])
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            r = miner.add_log_message(line.rstrip("\n"))
            out.writerow([n, r["cluster_id"], r["template_mined"]])


if __name__ == "__main__":
    main(sys.argv[1])
