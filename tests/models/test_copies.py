import torch
from torch import nn

from samzoo.models.copies import cached_copy


def test_a_copy_is_kept_until_the_weights_change():
    module = nn.Linear(3, 2)
    made = []

    def make(m):
        made.append(1)
        return m.weight.detach().clone()

    first = cached_copy(module, "w", make)
    assert cached_copy(module, "w", make) is first and len(made) == 1
    assert cached_copy(module, "other", make) is not first and len(made) == 2  # kinds are kept apart
    with torch.no_grad():
        module.weight.add_(1)  # in place, as an optimiser step or load_state_dict
    assert torch.equal(cached_copy(module, "w", make), module.weight) and len(made) == 3
    module.weight = nn.Parameter(torch.zeros(2, 3))  # replaced: another address
    assert torch.equal(cached_copy(module, "w", make), torch.zeros(2, 3)) and len(made) == 4
