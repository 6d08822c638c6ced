"""W&B's media with W&B's signatures: images with masks and boxes, audio, video, HTML, 3D objects,
molecules, plotly and matplotlib figures, logged in a run and read back from `run_values` and the
blob store."""

from __future__ import annotations

import io
import json
import struct
import wave
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracehouse as th
from tracehouse.tracking.blobs import blob_store
from tracehouse.tracking.media import Audio, Html, Image, Molecule, Object3D, Plotly, Video

TINY_OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
TINY_PDB = (
    "ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N\n"
    "ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00  0.00           C\n"
    "END\n"
)


def logged(run: th.Run) -> dict[str, dict[str, Any]]:
    """Each key's stored value (the last step's), with its `type` column checked against `_type`."""
    rows = th.query("SELECT key, type, value FROM run_values WHERE run_id = {r:String} ORDER BY step", {"r": run.id})
    values = {}
    for row in rows.itertuples():
        values[row.key] = json.loads(row.value)
        assert values[row.key]["_type"] == row.type
    return values


def blob(value: dict[str, Any]) -> bytes:
    data = blob_store().read_bytes(value["digest"])
    assert len(data) == value["size"]
    return data


def png_pixels(data: bytes) -> np.ndarray:
    """The pixels of an unfiltered 8-bit PNG (what tracehouse writes), decoded without Pillow."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, _, colour = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 6: 4}[colour]
    at, idat = 8, b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == b"IDAT":
            idat += data[at + 8 : at + 8 + length]
        at += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * channels)
    assert not raw[:, 0].any()  # filter 0 on every row
    pixels = raw[:, 1:].reshape(height, width, channels)
    return pixels[:, :, 0] if channels == 1 else pixels


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_images_take_chw_arrays_w_and_b_ranges_masks_boxes_and_classes(th_env: th.Settings) -> None:
    chw = np.zeros((3, 4, 5))  # channel-first: the last dimension is not a channel count
    chw[0] = 1.0  # floats in [0, 1] are scaled to 0-255
    signed = np.full((2, 2), -1.0)
    signed[0, 0] = 1.0  # [-1, 1] maps onto 0-255
    mask = np.zeros((4, 5), dtype=np.int64)
    mask[1:3, 1:4] = 2
    boxes = {"predictions": {"box_data": [
        {"position": {"minX": 0.1, "maxX": 0.5, "minY": 0.2, "maxY": 0.6}, "class_id": 2, "box_caption": "cat",
         "scores": {"acc": np.float32(0.75)}},
        {"position": {"middle": [2, 2], "width": 2, "height": 1}, "domain": "pixel", "class_id": 1},
    ], "class_labels": {1: "dog", 2: "cat"}}}  # fmt: skip
    masks = {"truth": {"mask_data": mask, "class_labels": {0: "bg", 2: "cat"}}, "guess": {"mask_data": mask // 2}}
    with th.init(project=th_env.project) as run:
        run.log({"chw": Image(chw, caption="red"), "signed": Image(signed), "grey": Image(np.full((1, 3, 2), 7)),
                 "seg": Image(np.zeros((4, 5, 3), dtype=np.uint8), masks=masks, boxes=boxes, grouping=3,
                              classes=[{"id": 3, "name": "bird"}]),
                 "raw": Image(np.array([[0, 128], [255, 300]]), normalize=False),
                 "rgb": Image(np.eye(3), mode="RGB")})  # fmt: skip
    values = logged(run)
    chw_value = values["chw"]
    assert (chw_value["width"], chw_value["height"], chw_value["format"], chw_value["caption"]) == (5, 4, "png", "red")
    assert png_pixels(blob(chw_value)).tolist() == [[[255, 0, 0]] * 5] * 4
    assert png_pixels(blob(values["signed"])).tolist() == [[255, 0], [0, 0]]
    assert png_pixels(blob(values["grey"])).tolist() == [[7, 7], [7, 7], [7, 7]]  # CHW, one channel
    assert png_pixels(blob(values["raw"])).tolist() == [[0, 128], [255, 300 % 256]]  # cast only, as W&B casts
    assert png_pixels(blob(values["rgb"]))[0].tolist() == [[255, 255, 255], [0, 0, 0], [0, 0, 0]]
    seg = values["seg"]
    assert seg["grouping"] == 3 and set(seg["masks"]) == {"truth", "guess"}
    truth = seg["masks"]["truth"]
    assert (truth["format"], truth["width"], truth["height"], truth["class_labels"]) == (
        "png", 5, 4, {"0": "bg", "2": "cat"}
    )  # fmt: skip
    assert np.array_equal(png_pixels(blob(truth)), mask)
    assert seg["masks"]["guess"]["class_labels"] == {"0": "class_0", "1": "class_1"}  # W&B's default labels
    first, second = seg["boxes"]["predictions"]["box_data"]
    assert first == {"position": {"minX": 0.1, "maxX": 0.5, "minY": 0.2, "maxY": 0.6}, "class_id": 2,
                     "box_caption": "cat", "scores": {"acc": 0.75}}  # fmt: skip
    assert second == {"position": {"middle": [2.0, 2.0], "width": 2.0, "height": 1.0}, "class_id": 1, "domain": "pixel"}
    assert seg["boxes"]["predictions"]["class_labels"] == {"1": "dog", "2": "cat"}
    assert {c["id"]: c["name"] for c in seg["classes"]} == {0: "class_0", 1: "dog", 2: "cat", 3: "bird"}
    copy = Image(Image(np.zeros((4, 5)), masks=masks, grouping=1), caption="copy")  # W&B's copy keeps annotations
    assert (set(copy.masks), copy.grouping, copy.caption, copy.width) == ({"truth", "guess"}, 1, "copy", 5)
    found = th.query(
        "SELECT JSONExtractString(value, 'masks', 'truth', 'digest') AS mask, "
        "JSONExtractInt(value, 'width') AS width FROM run_values WHERE run_id = {r:String} AND key = 'seg'",
        {"r": run.id},
    )
    assert (found["mask"].iloc[0], found["width"].iloc[0]) == (truth["digest"], 5)  # queryable with SQL


def test_audio_video_html_3d_and_molecules_store_their_bytes_and_facts(th_env: th.Settings, tmp_path: Path) -> None:
    clip = tmp_path / "beep.wav"
    with wave.open(str(clip), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
        out.writeframes(b"\x00\x10" * 4000)
    (tmp_path / "song.mp3").write_bytes(b"ID3\x03fake mp3 bytes")
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 fake")
    (tmp_path / "cube.obj").write_text(TINY_OBJ)
    (tmp_path / "ala.pdb").write_text(TINY_PDB)
    (tmp_path / "page.html").write_text("<html><body><a href='x'>x</a></body></html>")
    stereo = np.stack([np.linspace(-1, 1, 2205), np.zeros(2205)], axis=1)
    frames = np.zeros((3, 3, 4, 6), dtype=np.uint8)  # time, channel, height, width
    for t in range(3):
        frames[t, t % 3] = 200  # a red, a green and a blue frame
    cloud = np.array([[0.0, 0.0, 0.0, 1.0], [1.0, 2.0, 3.0, 2.0]])
    with open(tmp_path / "ala.pdb") as opened, th.init(project=th_env.project) as run:
        run.log({"tone": Audio(stereo, sample_rate=22050, caption="stereo"), "beep": Audio(clip),
                 "song": Audio(str(tmp_path / "song.mp3"), sample_rate=44100),
                 "frames": Video(frames, fps=10, caption="rgb"),
                 "batch": Video(np.zeros((3, 2, 1, 4, 6)), format="gif"),
                 "movie": Video(tmp_path / "clip.mp4"), "page": Html(str(tmp_path / "page.html")),
                 "snippet": Html("<p>hi</p>", inject=False), "cube": Object3D(str(tmp_path / "cube.obj")),
                 "cloud": Object3D(cloud), "scene": Object3D.from_point_cloud(
                     points=cloud, boxes=[{"corners": [[0, 0, 0]] * 8, "label": "car", "color": [255, 0, 0]}]),
                 "protein": Molecule(tmp_path / "ala.pdb", caption="ala"), "opened": Molecule(opened),
                 "streamed": Molecule(io.StringIO(TINY_PDB), file_type="pdb")})  # fmt: skip
    values = logged(run)
    tone = values["tone"]
    assert (tone["_type"], tone["format"], tone["sample_rate"], tone["channels"], tone["caption"]) == (
        "audio", "wav", 22050, 2, "stereo"
    )  # fmt: skip
    assert tone["duration"] == pytest.approx(0.1)
    with wave.open(io.BytesIO(blob(tone))) as read:
        assert (read.getnchannels(), read.getsampwidth(), read.getframerate(), read.getnframes()) == (2, 2, 22050, 2205)
        samples = np.frombuffer(read.readframes(2205), dtype="<i2").reshape(-1, 2)
    assert samples[0].tolist() == [-32767, 0] and samples[-1].tolist() == [32767, 0]
    beep = values["beep"]
    assert (beep["sample_rate"], beep["duration"], beep["channels"]) == (8000, 0.5, 1)
    assert blob(beep) == clip.read_bytes()  # a file's bytes as they are
    assert blob(values["song"]) == b"ID3\x03fake mp3 bytes" and values["song"]["sample_rate"] == 44100
    assert values["song"]["format"] == "mp3" and values["song"]["duration"] is None
    video = values["frames"]
    assert (video["_type"], video["format"], video["fps"], video["frames"], video["duration"]) == (
        "video", "gif", 10.0, 3, 0.3
    )  # fmt: skip
    assert (video["width"], video["height"], video["caption"]) == (6, 4, "rgb")
    assert blob(video)[:6] == b"GIF89a"
    batch = values["batch"]  # 3 videos padded to 4, in one row of 4 as W&B lays them out
    assert (batch["width"], batch["height"], batch["frames"]) == (24, 4, 2)
    assert blob(values["movie"]) == (tmp_path / "clip.mp4").read_bytes() and values["movie"]["format"] == "mp4"
    page = blob(values["page"]).decode()
    assert page == "<html><head><base target=\"_blank\"></head><body><a href='x'>x</a></body></html>"
    assert blob(values["snippet"]) == b"<p>hi</p>" and values["snippet"]["_type"] == "html"
    assert blob(values["cube"]).decode() == TINY_OBJ and values["cube"]["format"] == "obj"
    assert values["cloud"]["format"] == "pts.json" and values["cloud"]["points"] == 2
    assert json.loads(blob(values["cloud"])) == cloud.tolist()
    scene = json.loads(blob(values["scene"]))
    assert scene["type"] == "lidar/beta" and scene["points"] == cloud.tolist() and scene["boxes"][0]["label"] == "car"
    for key in ("protein", "opened", "streamed"):
        assert (values[key]["_type"], values[key]["format"], blob(values[key]).decode()) == (
            "molecule",
            "pdb",
            TINY_PDB,
        )
    assert values["protein"]["caption"] == "ala"
    rates = th.query(
        "SELECT key, JSONExtractInt(value, 'sample_rate') AS rate FROM run_values "
        "WHERE run_id = {r:String} AND type = 'audio' ORDER BY key",
        {"r": run.id},
    )
    assert rates.values.tolist() == [["beep", 8000], ["song", 44100], ["tone", 22050]]


def test_video_frames_decode_to_the_pixels_given(th_env: th.Settings) -> None:
    pil = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(7)
    few = (rng.integers(0, 4, size=(4, 3, 9, 11)) * 85).astype(np.uint8)  # <= 256 colours: an exact palette
    grey = rng.integers(0, 256, size=(1, 1, 120, 130), dtype=np.uint8)  # long enough to fill LZW's table
    for frames in (few, grey):
        video = Video(frames, fps=4)
        with pil.open(io.BytesIO(video.data)) as gif:
            assert gif.n_frames == frames.shape[0] and gif.info["duration"] == 250
            for t in range(frames.shape[0]):
                gif.seek(t)
                expected = np.repeat(frames[t], 3, axis=0) if frames.shape[1] == 1 else frames[t]
                assert np.array_equal(np.asarray(gif.convert("RGB")), expected.transpose(1, 2, 0))
    many = rng.integers(0, 256, size=(2, 3, 16, 16), dtype=np.uint8)  # more colours: a 6x7x6 cube
    with pil.open(io.BytesIO(Video(many).data)) as gif:
        gif.seek(1)
        error = np.abs(np.asarray(gif.convert("RGB")).astype(int) - many[1].transpose(1, 2, 0))
        assert error.max() <= 26


def test_matplotlib_figures_are_images(th_env: th.Settings) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(2, 1.5), dpi=50)
    axes.plot([0, 1, 2], [2, 0, 1])
    with th.init(project=th_env.project) as run:
        run.log({"wrapped": Image(figure, caption="line"), "chart": figure, "axes": Image(axes), "pyplot": Image(plt)})
    plt.close(figure)
    values = logged(run)
    for key in ("wrapped", "chart", "axes", "pyplot"):
        value = values[key]
        assert (value["_type"], value["format"], value["width"], value["height"]) == ("image", "png", 100, 75)
        assert png_size(blob(value)) == (100, 75)
    assert values["wrapped"]["caption"] == "line"
    assert Plotly.make_plot_media(figure).width == 100  # W&B's plot media: tracehouse keeps the picture


def test_plotly_figures_store_their_json(th_env: th.Settings) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    figure = go.Figure(data=[go.Scatter(x=np.arange(3), y=np.array([1.5, 0.5, 2.5]))], layout={"title": "loss"})
    heatmap = go.Figure(data=[go.Heatmap(z=np.arange(6, dtype=np.int32).reshape(2, 3))])
    with th.init(project=th_env.project) as run:
        run.log({"wrapped": Plotly(figure), "raw": figure, "heat": heatmap})
    values = logged(run)
    assert json.loads(blob(values["heat"]))["data"][0]["z"] == [[0, 1, 2], [3, 4, 5]]  # typed arrays as lists
    for key in ("wrapped", "raw"):
        value = values[key]
        assert (value["_type"], value["format"], value["traces"], value["title"]) == (
            "plotly",
            "plotly.json",
            1,
            "loss",
        )
        stored = json.loads(blob(value))
        assert stored["data"][0]["type"] == "scatter" and stored["data"][0]["y"] == [1.5, 0.5, 2.5]
    assert values["wrapped"]["digest"] == values["raw"]["digest"]


def test_torch_tensors_are_channel_first_images(th_env: th.Settings) -> None:
    torch = pytest.importorskip("torch")
    tensor = torch.zeros((3, 2, 4), requires_grad=True)
    with torch.no_grad():
        tensor[2] = 1.0
    video = torch.zeros((2, 3, 4, 4), dtype=torch.uint8)
    with th.init(project=th_env.project) as run:
        run.log({"tensor": Image(tensor), "grey": Image(torch.ones((5, 6))), "video": Video(video),
                 "sound": Audio(torch.zeros(800), sample_rate=8000)})  # fmt: skip
    values = logged(run)
    assert (values["tensor"]["width"], values["tensor"]["height"]) == (4, 2)
    assert png_pixels(blob(values["tensor"])).tolist() == [[[0, 0, 255]] * 4] * 2
    assert png_pixels(blob(values["grey"])).shape == (5, 6)
    assert values["video"]["frames"] == 2 and values["sound"]["duration"] == 0.1


CENTRED = {"position": {"middle": [0, 0], "width": 1, "height": 1}}


def test_bad_media_arguments_raise_at_construction(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    cases: list[tuple[Any, str]] = [
        (lambda: Image(np.zeros((4, 5)), masks={"m": {"mask_data": np.zeros((5, 4), dtype=int)}}), "image is 4x5"),
        (lambda: Image(np.zeros((4, 5)), masks={"m": {"mask_data": np.zeros((4, 5, 2))}}), "2D array"),
        (lambda: Image(np.zeros((4, 5)), masks={"m": {"mask_data": np.full((4, 5), 0.5)}}), "between 0 and 255"),
        (lambda: Image(np.zeros((4, 5)), masks={"m": {"data": 1}}), "masks\\['m'\\]"),
        (lambda: Image(np.zeros((4, 5)), masks=[1]), "^masks: "),
        (lambda: Image(np.zeros((2, 2)), boxes={"b": {"box_data": [{"position": {"minX": 0}}]}}), "box_data\\[0\\]"),
        (lambda: Image(np.zeros((2, 2)), boxes={"b": {"box_data": [{"class_id": 1}]}}), "needs a position"),
        (lambda: Image(np.zeros((2, 2)), boxes={"b": {"box_data": {}}}), "a list of boxes"),
        (lambda: Image(np.zeros((2, 2)), boxes={"b": {"box_data": [dict(CENTRED, class_id="cat")]}}), "class_id"),
        (lambda: Image(np.zeros((2, 2)), boxes={"b": {"box_data": [], "class_labels": {"a": "b"}}}), "class_labels"),
        (lambda: Image(np.zeros((2, 2)), classes=[{"id": "x"}]), "^classes: "),
        (lambda: Image(np.zeros((2, 2)), file_type="tiff"), "^file_type: "),
        (lambda: Image(np.zeros((2, 3, 5, 5))), "HxW"),
        (lambda: Audio(np.zeros(10)), "^sample_rate: is required"),
        (lambda: Audio(np.zeros(10), sample_rate=0), "^sample_rate: "),
        (lambda: Audio(np.zeros((2, 2, 2)), sample_rate=8000), "^data_or_path: "),
        (lambda: Audio(str(tmp_path / "notes.txt")), "supported formats"),
        (lambda: Audio(str(tmp_path / "missing.wav")), "is not a file"),
        (lambda: Video(np.zeros((3, 4, 4))), "time, channel, height, width"),
        (lambda: Video(np.zeros((3, 2, 4, 4))), "1, 3 or 4 channels"),
        (lambda: Video(np.zeros((3, 3, 4, 4)), format="mp4"), "gif only"),
        (lambda: Video(np.zeros((3, 3, 4, 4)), format="avi"), "^format: "),
        (lambda: Video(np.zeros((3, 3, 4, 4)), fps=0), "^fps: "),
        (lambda: Video(str(tmp_path / "notes.txt")), "gif, mp4, ogg, webm"),
        (lambda: Html(42), "^data: "),
        (lambda: Object3D(np.zeros((3, 5))), r"\(N, 3\)"),
        (lambda: Object3D(str(tmp_path / "notes.txt")), "supported formats"),
        (lambda: Object3D(io.StringIO(TINY_OBJ)), "^file_type: "),
        (lambda: Object3D({"type": "radar"}), "lidar/beta"),
        (lambda: Object3D.from_point_cloud([], [], point_cloud_type="radar"), "^point_cloud_type: "),
        (lambda: Molecule(str(tmp_path / "notes.txt")), "pdb"),
        (lambda: Molecule(io.StringIO(TINY_PDB), file_type="png"), "^file_type: "),
        (lambda: Molecule(3), "^data_or_path: "),
        (lambda: Plotly({"data": []}), "^val: expected a plotly figure"),
    ]
    for make, message in cases:
        with pytest.raises(th.ConfigError, match=message):
            make()
