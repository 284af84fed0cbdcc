import logging
import sys
import warnings

import pytest

from samzoo.tracking.quiet import quiet


def test_quiet_drops_output_but_not_errors(capsys):
    logger = logging.getLogger("samzoo-test-quiet")
    logger.setLevel(logging.DEBUG)
    with quiet("samzoo-test-quiet"):
        print("progress bar", file=sys.stderr)
        warnings.warn("noise")
        assert logger.level == logging.WARNING
    assert logger.level == logging.DEBUG
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="still raised"):
        with quiet():
            raise ValueError("still raised")
