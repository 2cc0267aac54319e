"""Network sources and completion from the grid defaults."""

import numpy as np
import pytest

from powercheck.grid.networks import complete_network, load_grid_defaults, load_source
from tests.helpers.grids import quiet


def test_completion_fills_only_missing_data():
    net = quiet(load_source, "pandapower:kerber_dorfnetz")
    r1 = net.line.r_ohm_per_km.copy()
    used = complete_network(net, load_grid_defaults())
    assert "line_r0_r1_ratio" in used and "ext_grid_s_sc_max_mva" in used
    assert (net.trafo.vector_group == "Dyn").all()  # was Dyn5
    np.testing.assert_allclose(net.line.r0_ohm_per_km, 4 * r1)
    # the IEEE feeder carries its own zero-sequence and source data
    ieee = quiet(load_source, "pandapower:ieee_european_lv_asymmetric")
    r0 = ieee.line.r0_ohm_per_km.copy()
    used = complete_network(ieee, load_grid_defaults())
    assert "line_r0_r1_ratio" not in used and "ext_grid_s_sc_max_mva" not in used
    np.testing.assert_array_equal(ieee.line.r0_ohm_per_km, r0)


@pytest.mark.parametrize(
    "name",
    [
        "kerber_landnetz_kabel_1",
        "kerber_landnetz_kabel_2",
        "kerber_dorfnetz",
        "kerber_vorstadtnetz_kabel_1",
        "kerber_vorstadtnetz_kabel_2",
    ],
)
def test_randomised_kerber_generators_are_reproducible(name):
    # these generators pick branch-out cable types with random.random(): a pandapower: source must
    # still give the same network every time, since its cache key is only its name and arguments
    first = quiet(load_source, f"pandapower:{name}")
    for _ in range(3):
        again = quiet(load_source, f"pandapower:{name}")
        assert again.line.std_type.tolist() == first.line.std_type.tolist()
