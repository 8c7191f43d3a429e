"""The benchmark (``python -m tests.bench``) at a tiny scale, so its code cannot rot: the data
builder, the server with its ceiling, the load generator in its own process and the report. No
figure is checked, only that every request got the answer it should."""

from __future__ import annotations

from tests.bench import run


async def test_the_benchmark_runs_end_to_end_at_a_tiny_scale():
    options = run.parse(
        [
            "--backend=sqlite",
            "--customers=20",
            "--invoices=100",
            "--sessions=10",
            "--duration=0.3",
            "--warmup=0.1",
            "--concurrency=4",
            "--stripe-views=4",
        ]
    )
    results = await run.run(options, say=lambda line: None)
    (result,) = results
    assert set(result.endpoints) == {
        "plaintext (ceiling)",
        "login page",
        "passcode request",
        "portal overview",
        "invoice list",
        "htmx fragment (invoices p2)",
        "portal overview, rendered",
        "invoice list, rendered",
        "htmx fragment (invoices p2), rendered",
    }
    for name, figures in result.endpoints.items():
        assert figures["ok"] > 0, name
        assert figures["unexpected"] == {}, name
        assert figures["failures"] == 0, name
    assert result.overview_at_70["unexpected"] == {}
    assert result.outbox["pending"] == 0  # every passcode email was delivered to the sink
    assert result.stripe["views"] == 4
    assert result.stripe["calls"] == 0  # pages read the local mirror, never Stripe
    assert result.stripe["rss_mb"]  # the Stripe-mode worker's memory is reported too
    assert all(mb > 0 for mb in result.rss_mb.values())
    text = run.report(results, options)
    assert "== sqlite" in text
    assert "Stripe calls per page view in Stripe mode: 0.00" in text
