"""The run report's plot: what each service's panel shows."""
import matplotlib.pyplot as plt
import orjson

from logml.report import figure, plot


def _windows(tmp_path, with_expected: bool):
    out = tmp_path / "out"
    out.mkdir()
    rows = []
    for k in range(30):
        logml = {"lines": 100 + k, "errors": 1, "anomaly_score": 0.0}
        if with_expected:
            logml["expected_lines"] = 120.0
        rows.append({"@timestamp": f"2025-11-25T00:{k:02d}:00.000Z", "service": {"name": "api"},
                     "logml": logml})
    (out / "windows.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return out


def test_the_plot_shows_the_expected_lines_against_the_lines(tmp_path):
    fig = figure(_windows(tmp_path, True), None)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert list(lines["expected lines"].get_ydata()) == [120.0] * 30
    assert list(lines["lines / window"].get_ydata()) == list(range(100, 130))
    plt.close(fig)


def test_outputs_without_expected_lines_still_plot(tmp_path):
    out = _windows(tmp_path, False)
    fig = figure(out, None)
    assert "expected lines" not in {ln.get_label() for ln in fig.axes[0].get_lines()}
    plt.close(fig)
    png = plot(out, None, tmp_path / "r.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
