"""List, split and annotation text files as other systems write them: a UTF-8 byte-order mark
(Windows Notepad) and CRLF line ends read like plain files, in every dataset family that reads
one (VOC-style split files, classification image lists, Cityscapes polygon JSON)."""
import json

from domaingen.data.datasets import (
    load_cityscapes_detection,
    load_classification,
    read_split_ids,
)

BOM = "\ufeff"


def windows(text: str) -> bytes:
    """``text`` as Notepad saves it: a byte-order mark, CRLF line ends."""
    return (BOM + text.replace("\n", "\r\n")).encode("utf-8")


def test_voc_split_file(tmp_path):
    split = tmp_path / "VOC" / "ImageSets" / "Main" / "train.txt"
    split.parent.mkdir(parents=True)
    split.write_bytes(windows("000001\n000002\n"))
    assert read_split_ids(str(tmp_path / "VOC"), "train") == ["000001", "000002"]


def test_classification_image_list(tmp_path):
    root = tmp_path / "domainnet"
    for name in ("circle_0.jpg", "circle_1.jpg"):
        (root / "clipart" / "circle").mkdir(parents=True, exist_ok=True)
        (root / "clipart" / "circle" / name).write_bytes(b"")
    (root / "clipart_test.txt").write_bytes(windows(
        "clipart/circle/circle_0.jpg 0\nclipart/circle/circle_1.jpg 0\n"))
    dicts = load_classification("domainnet", "clipart", "test", root=str(tmp_path))
    assert [d["image_id"] for d in dicts] == ["clipart/circle/circle_0.jpg",
                                             "clipart/circle/circle_1.jpg"]
    assert dicts[0]["file_name"] == str(root / "clipart" / "circle" / "circle_0.jpg")


def test_cityscapes_polygon_json(tmp_path):
    gt = tmp_path / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_polygons.json"
    gt.parent.mkdir(parents=True)
    gt.write_bytes(windows(json.dumps({"imgWidth": 100, "imgHeight": 50, "objects": [
        {"label": "car", "polygon": [[10, 5], [40, 5], [40, 25]]}]})))
    image = tmp_path / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000019_leftImg8bit.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"")
    (d,) = load_cityscapes_detection(str(tmp_path / "leftImg8bit" / "train"),
                                     str(tmp_path / "gtFine" / "train"))
    assert d["annotations"][0]["bbox"] == [10, 5, 40, 25]
