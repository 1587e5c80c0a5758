import numpy as np
import pytest

from scaleguard.errors import ConfigError
from scaleguard.ladder._corpus import load_corpus, stdlib_root


def _tree(tmp_path, files=40):
    for i in range(files):
        (tmp_path / f"pkg{i % 3}").mkdir(exist_ok=True)
        (tmp_path / f"pkg{i % 3}" / f"mod{i}.py").write_text(f"# module {i}\n" + "x = 1\n" * i)
    (tmp_path / "notes.txt").write_text("not python\n")
    return tmp_path


def test_split_is_by_file_fixed_and_disjoint(tmp_path):
    root = _tree(tmp_path)
    corpus = load_corpus([root], val_fraction=0.2)
    again = load_corpus([root], val_fraction=0.2)
    assert corpus.digest == again.digest
    np.testing.assert_array_equal(corpus.train, again.train)
    assert corpus.train_files + corpus.val_files == 40  # the .txt file is not read
    train, val = corpus.train.tobytes(), corpus.val.tobytes()
    held_out = [line for line in val.decode().splitlines() if line.startswith("# module")]
    assert held_out and all(line + "\n" not in train.decode() for line in held_out)
    assert corpus.as_dict()["val_files"] == corpus.val_files


def test_own_suffixes_and_single_files(tmp_path):
    root = _tree(tmp_path)
    corpus = load_corpus([root, root / "notes.txt", root / "pkg0" / "mod0.py"],
                         suffixes=(".txt", ".py"), val_fraction=0.3)
    # notes.txt is under the root too and counts once; mod0.py given alone is a file of its own.
    assert corpus.train_files + corpus.val_files == 42
    assert corpus.source.startswith(str(root))


def test_cap_on_bytes_samples_the_whole_tree():
    corpus = load_corpus(max_bytes=3e5)
    assert corpus.source == "python-stdlib"
    assert corpus.val.size > 0 and corpus.train.size < 3e5 + 2e5  # at most one file over
    assert stdlib_root().is_dir()


def test_bad_corpora(tmp_path):
    with pytest.raises(ConfigError, match=r"corpus.paths: .*missing: no such file or folder"):
        load_corpus([tmp_path / "missing"])
    with pytest.raises(ConfigError, match=r"corpus.paths: no files ending in .py under"):
        load_corpus([tmp_path])
    (tmp_path / "only.py").write_text("print(1)\n")
    with pytest.raises(ConfigError, match=r"1 files are too few to hold out 5% by file"):
        load_corpus([tmp_path])
