"""The feature cache (training/feature_cache.py) on real files with a real Keras extractor: a second
call computes only the photos not seen; other weights (or input size) find nothing; a corrupt or
truncated entry is recomputed and rewritten, never trusted; the job specifications give the cache to the
job (moto: the `features` channel once the prefix holds entries) and the conversion job the cache's prefix as
its second output; new entries leave a real training job in its model folder (model.tar.gz) and a real
conversion hands them on, so the next job reads them. A real `flowers up` whose second run reads the first
run's features: tests/e2e/test_feature_cache_up.py."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline_fixtures import aws, created  # noqa: F401  (fixtures)
from training import feature_cache


@pytest.fixture(scope="module")
def extractor():
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs)


def photos(count, seed):
    return np.random.default_rng(seed).integers(0, 255, (count, 8, 8, 3), dtype=np.uint8)


class Counting:
    def __init__(self, extractor):
        self.extractor, self.seen = extractor, 0

    def __call__(self, images):
        self.seen += len(images)
        return self.extractor(images.astype(np.float32), training=False).numpy()


def test_only_unseen_photos_are_computed_and_the_answers_are_the_same(tmp_path, extractor):
    cache = feature_cache.FeatureCache(tmp_path / "features", "tiny_cnn", 8)
    compute = Counting(extractor)
    first = photos(10, 0)
    expected = compute(first)
    compute.seen = 0
    assert np.allclose(cache.features(extractor, first, compute), expected) and compute.seen == 10
    more = np.concatenate([first, photos(3, 1)])
    again = cache.features(extractor, more, compute)
    assert compute.seen == 13 and cache.stats.as_dict() == {"hits": 10, "computed": 13, "corrupt": 0}
    assert np.array_equal(again[:10], cache.features(extractor, first, compute)[:10]) and np.allclose(again[:10], expected)
    assert len(list((tmp_path / "features").rglob("*.f32"))) == 13


def test_other_weights_or_input_size_find_nothing(tmp_path, extractor):
    import keras

    folder = tmp_path / "features"
    compute = Counting(extractor)
    feature_cache.FeatureCache(folder, "tiny_cnn", 8).features(extractor, photos(4, 0), compute)
    assert compute.seen == 4
    feature_cache.FeatureCache(folder, "tiny_cnn", 16).features(extractor, photos(4, 0), compute)
    assert compute.seen == 8  # another input size: another identity
    other = keras.models.clone_model(extractor)  # same architecture, other weights (a warm start, fine-tuning)
    assert feature_cache.FeatureCache(folder, "tiny_cnn", 8).identity(other) != feature_cache.FeatureCache(folder, "tiny_cnn", 8).identity(extractor)
    counted = Counting(other)
    feature_cache.FeatureCache(folder, "tiny_cnn", 8).features(other, photos(4, 0), counted)
    assert counted.seen == 4


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty", "wrong length"])
def test_a_corrupt_entry_is_recomputed_and_rewritten(tmp_path, extractor, damage):
    cache = feature_cache.FeatureCache(tmp_path / "features", "tiny_cnn", 8)
    compute = Counting(extractor)
    images = photos(3, 0)
    expected = cache.features(extractor, images, compute)
    entry = sorted((tmp_path / "features").rglob("*.f32"))[0]
    raw = entry.read_bytes()
    if damage == "flip a byte":
        entry.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    elif damage == "truncate":
        entry.write_bytes(raw[:-4])
    elif damage == "empty":
        entry.write_bytes(b"")
    else:  # a valid checksum over a body of the wrong size
        import hashlib
        body = b"\0" * 8
        entry.write_bytes(feature_cache.FORMAT + hashlib.sha256(body).digest() + body)
    fresh = feature_cache.FeatureCache(tmp_path / "features", "tiny_cnn", 8)
    compute.seen = 0
    assert np.allclose(fresh.features(extractor, images, compute), expected)
    assert compute.seen == 1 and fresh.stats.corrupt == 1 and entry.read_bytes() == raw  # rewritten whole


def test_no_folder_no_cache(extractor, tmp_path):
    compute = Counting(extractor)
    with feature_cache.opened("tiny_cnn", 8, environ={}) as cache:
        assert cache is None
        feature_cache.features(extractor, photos(2, 0), compute)
        feature_cache.features(extractor, photos(2, 0), compute)
    assert compute.seen == 4
    with feature_cache.opened("tiny_cnn", 8, environ={feature_cache.FOLDER_ENV: str(tmp_path / "f")}) as cache:
        feature_cache.features(extractor, photos(2, 0), compute)
        feature_cache.features(extractor, photos(2, 0), compute)
    assert compute.seen == 6 and cache.stats.hits == 2
    feature_cache.features(extractor, photos(2, 0), compute)  # closed after phase 1: computed again
    assert compute.seen == 8


def test_the_job_gets_the_cache_on_moto(aws, created):  # noqa: F811
    from chalice.test import Client

    import app as chalice_app
    from test_pipeline_aws import World

    with Client(chalice_app.app) as client:
        world = World(aws, client)
        world.upload(["daisy/a.jpg", "roses/b.jpg"])
        world.now += 601
        first = world.tick()
        request = created[first["job"]]
        assert request["Environment"]["FLOWERS_FEATURE_CACHE"] == "/opt/ml/input/data/features"
        # the channel is read-only and the job has no network: new entries leave in model.tar.gz
        assert request["Environment"]["FLOWERS_FEATURE_CACHE_NEW"] == "/opt/ml/model/features"
        assert not any("URI" in name for name in request["Environment"] if name.startswith("FLOWERS_FEATURE"))
        assert request["EnableNetworkIsolation"] is True
        assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["training"]  # nothing cached yet: no channel
        # what an earlier run's conversion job uploads (its `features` output): entries, and the marker
        world.aws.s3.put_object(Bucket=world.aws.artifacts, Key="features/ab/abcd.f32", Body=b"entry")
        world.aws.s3.put_object(Bucket=world.aws.artifacts, Key="features/README.txt", Body=b"marker")
        from pipeline_fixtures import training_state_event
        world.sagemaker_event(training_state_event(first["job"], "Failed", "boom"))
        world.upload(["daisy/c.jpg"])
        world.now += 10_000
        while "job" not in world.tick():
            world.now += 10_000
        channels = {c["ChannelName"]: c for c in list(created.values())[-1]["InputDataConfig"]}
        assert channels["features"]["DataSource"]["S3DataSource"] == {
            "S3DataType": "S3Prefix", "S3Uri": "s3://flowers-artifacts/features/", "S3DataDistributionType": "FullyReplicated"}
        assert channels["features"]["InputMode"] == "FastFile"  # fetched entry by entry as looked up, not copied whole


def test_a_read_only_channel_is_read_and_new_entries_go_to_the_new_folder(tmp_path, extractor):
    """The cloud's way: entries read from the channel (read-only), the run's new ones written to the new folder
    (and uploaded from there), and read back from it within the run."""
    channel, new = tmp_path / "channel", tmp_path / "new"
    feature_cache.FeatureCache(channel, "tiny_cnn", 8).features(extractor, photos(3, 0), Counting(extractor))  # an earlier job's
    before = sorted(channel.rglob("*"))
    environ = {feature_cache.FOLDER_ENV: str(channel), feature_cache.NEW_ENV: str(new)}
    again = Counting(extractor)
    with feature_cache.opened("tiny_cnn", 8, environ=environ) as cache:
        feature_cache.features(extractor, photos(5, 0), again)
        feature_cache.features(extractor, photos(5, 0), again)
    assert (cache.stats.hits, cache.stats.computed, again.seen) == (3 + 5, 2, 2)
    assert sorted(channel.rglob("*")) == before  # nothing written into the channel
    assert len(list(new.rglob("*.f32"))) == 2 and all(path.is_relative_to(new) for path in cache.stats.written)


def entry_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.f32"))


def test_hand_on_copies_well_formed_entries_and_the_marker_only(tmp_path, extractor):
    """What the conversion job uploads to features/ is what the training job wrote, entry by entry, checked: a
    corrupt entry, a part file a crash left, or any other file in the model folder's features/ stays behind."""
    new = tmp_path / "model" / "features"
    feature_cache.FeatureCache(new, "tiny_cnn", 8).features(extractor, photos(3, 0), Counting(extractor))
    good = entry_files(new)
    corrupt = new / good[0][:3] / (good[0][:2] + "0" * 62 + ".f32")
    corrupt.write_bytes(feature_cache.FORMAT + b"\0" * 32 + b"\0\0\0\0")  # a checksum that does not match
    (new / good[0][:3] / ".part-left-by-a-crash").write_bytes(b"x")
    (new / "ab" / "script.sh").parent.mkdir(exist_ok=True)
    (new / "ab" / "script.sh").write_bytes(b"not an entry")
    (new / "stray.txt").write_bytes(b"not in a key folder")
    out = tmp_path / "out"
    assert feature_cache.hand_on(new, out) == (3, 3)
    assert entry_files(out) == good and all((out / e).read_bytes() == (new / e).read_bytes() for e in good)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(good + ["README.txt"])
    assert feature_cache.hand_on(tmp_path / "no-such-folder", tmp_path / "empty") == (0, 0)  # a model without entries
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["README.txt"]  # the output is never empty


def _phase_one(captured: str) -> tuple[int, int]:
    """(read from the cache, computed) of the job's phase 1 log line."""
    line = next(line for line in captured.splitlines() if line.startswith("feature cache:") and line.endswith("(phase 1)"))
    return int(line.split()[2]), int(line.split(", ")[1].split()[0])


def test_new_entries_leave_through_the_model_archive_and_the_conversion_reaches_the_next_job(tmp_path, capsys):
    """The round trip with no network: a real training job reads an empty channel and writes its new entries
    into its model folder; SageMaker packs that into model.tar.gz; the real conversion, given the archive,
    hands them on to its `features` output (uploaded to features/); the next job, reading that as its channel,
    computes none of phase 1's features again."""
    import tarfile

    from data_fixtures import Job, make_folder_dataset, run_in_process
    from training import convert, train

    data = make_folder_dataset(tmp_path / "data", per_class=12)
    settings = dict(preset="tiny_cnn", image_size=32, epochs=1, head_epochs=2, batch_size=8, augmentation="false")
    channel = tmp_path / "channel"  # s3://ARTIFACTS/features/ as the `features` channel: none yet
    first = Job(tmp_path / "first", data).hyperparameters(**settings)
    assert run_in_process(first, train.main, FLOWERS_FEATURE_CACHE=str(channel),
                          FLOWERS_FEATURE_CACHE_NEW=str(first.model / "features")) == 0
    hits, computed = _phase_one(capsys.readouterr().out)
    assert hits == 0 and computed > 0 and not channel.exists()  # nothing written where the job reads
    written = entry_files(first.model / "features")
    assert len(written) >= computed

    archive = tmp_path / "processing" / "model"  # the Processing job's `model` input: the archive as it is
    archive.mkdir(parents=True)
    with tarfile.open(archive / "model.tar.gz", "w:gz") as tar:
        for item in first.model.iterdir():
            tar.add(item, arcname=item.name)
    uploaded = tmp_path / "processing" / "features"  # its `features` output, uploaded to s3://ARTIFACTS/features/
    convert.convert(archive, tmp_path / "processing" / "output", data, quantize="fp32", features_out=uploaded)
    assert entry_files(uploaded) == written and (uploaded / "README.txt").exists()
    assert not (tmp_path / "processing" / "output" / "features").exists()  # models/<version>/ holds the model only

    second = Job(tmp_path / "second", data).hyperparameters(**settings)
    assert run_in_process(second, train.main, FLOWERS_FEATURE_CACHE=str(uploaded),
                          FLOWERS_FEATURE_CACHE_NEW=str(second.model / "features")) == 0
    assert _phase_one(capsys.readouterr().out) == (computed, 0)
