"""The synthetic data generators replace a tree only when every file in it is theirs: a file a
user put there (or any file where no generator marker is) stops them, named, and stays."""
import hashlib

import pytest

from domaingen.miniature.synthetic import generate_diverse_weather
from domaingen.miniature.synthetic.domains import generate_domains
from domaingen.miniature.synthetic.ownership import GeneratedTreeError


def checksum(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_stale_tree_with_a_users_file_is_not_replaced(tmp_path):
    generate_domains(str(tmp_path), seed=0, num_per_class=1, image_size=32)
    mine = tmp_path / "synthetic_domains" / "photo" / "circle" / "my_photo.jpg"
    mine.write_bytes(b"precious")
    with pytest.raises(GeneratedTreeError, match=f"{mine} was not written by the synthetic data "
                                                 f"generator"):
        generate_domains(str(tmp_path), seed=0, num_per_class=2, image_size=32)
    assert mine.read_bytes() == b"precious"
    mine.unlink()
    summary = generate_domains(str(tmp_path), seed=0, num_per_class=2, image_size=32)
    assert summary["generated"] and summary["images"] == 2 * len(summary["domains"]) * 5


def test_files_where_no_generator_wrote_stop_it(tmp_path):
    root = tmp_path / "dw"
    theirs = root / "daytime_clear" / "VOC2007" / "JPEGImages" / "000001.jpg"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"a real image")
    before = checksum(theirs)
    with pytest.raises(GeneratedTreeError, match="was not written by the synthetic data"):
        generate_diverse_weather(str(root), num_train=2, num_test=1, num_target=1)
    assert checksum(theirs) == before
