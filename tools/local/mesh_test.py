from tools.local.mesh import stage_batches
from tools.local.topology import ProcessSpec


def _spec(name: str, stage: int) -> ProcessSpec:
    return ProcessSpec(name=name, argv=("true",), ready_url="", stage=stage)


def test_batches_follow_the_stages_in_order_even_when_a_stage_number_is_skipped():
    # The kube platform has stages 0, 1 and 3 (no stage of pods): three batches, "of 3".
    specs = [_spec("gateway", 3), _spec("store", 0), _spec("pilot", 1), _spec("ca", 0)]
    batches = stage_batches(specs)
    assert [[s.name for s in batch] for batch in batches] == [
        ["store", "ca"],
        ["pilot"],
        ["gateway"],
    ]
