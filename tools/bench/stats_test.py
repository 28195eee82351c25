import pytest

from tools.bench.stats import Summary, median, percentile


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 25) == pytest.approx(1.75)


def test_p99_of_twenty_lies_below_the_maximum() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 99) == pytest.approx(19.81)
    assert percentile(values, 90) == pytest.approx(18.1)


def test_single_value_is_every_percentile() -> None:
    assert percentile([7.0], 0) == percentile([7.0], 99) == 7.0
    assert median([3.0, 1.0, 2.0]) == 2.0


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summary_converts_seconds_to_milliseconds() -> None:
    summary = Summary.of_seconds([0.001, 0.002, 0.003, 0.010])
    assert summary.count == 4
    assert summary.min == pytest.approx(1.0)
    assert summary.max == pytest.approx(10.0)
    assert summary.p50 == pytest.approx(2.5)
    assert summary.mean == pytest.approx(4.0)
    data = summary.to_json()
    assert data["count"] == 4
    assert data["p50_ms"] == 2.5
    assert set(data) == {"count", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"}
    assert "p99=" in summary.line()


def test_summary_of_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="summary of no samples"):
        Summary.of_seconds([])
