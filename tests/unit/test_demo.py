import subprocess
import sys


def test_demo_finds_the_incidents_and_writes_a_report(tmp_path):
    p = subprocess.run([sys.executable, "-m", "logml.cli", "demo", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "recall (within 2 windows): 4/4" in p.stdout
    html = (tmp_path / "report.html").read_text()
    assert '<img src="report.png"' in html and "Found versus truth" in html
    png = (tmp_path / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
    assert (tmp_path / "output" / "anomalies.jsonl").stat().st_size > 0
