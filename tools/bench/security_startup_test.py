from tools.bench import security_startup


def test_summarize_leaves_out_milestones_never_reached() -> None:
    samples = [
        {"envoy_admin": 500.0, "node_agent_cert": None, "envoy_cert": 510.0, "ready": 540.0},
        {"envoy_admin": 480.0, "node_agent_cert": None, "envoy_cert": 490.0, "ready": None},
        {"envoy_admin": 490.0, "node_agent_cert": None, "envoy_cert": 530.0, "ready": 600.0},
    ]
    summary = security_startup.summarize(samples)
    assert set(summary) == {"envoy_admin", "envoy_cert", "ready"}
    assert summary["envoy_admin"] == {"count": 3, "p50_ms": 490.0, "max_ms": 500.0}
    assert summary["envoy_cert"] == {"count": 3, "p50_ms": 510.0, "max_ms": 530.0}
    assert summary["ready"] == {"count": 2, "p50_ms": 570.0, "max_ms": 600.0}
    assert security_startup.summarize([]) == {}
