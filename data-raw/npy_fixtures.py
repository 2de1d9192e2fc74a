#!/usr/bin/python3
# NumPy / h5py fixtures for tests/testthat/test-io.R (a few KB in all).
# Run from the package root with Debian's numpy and h5py (python3-numpy, python3-h5py):
#   /usr/bin/python3 data-raw/npy_fixtures.py
# Each <name>.npy comes with <name>.txt: the shape on the first line, then every value
# in C (row-major) order, so that the R test checks read_npy() against numpy itself.
import os
import numpy as np

OUT = "tests/testthat/fixtures/npy"
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(7)


def save(name, a, **kw):
    np.save(os.path.join(OUT, name + ".npy"), a, **kw)
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        f.write(" ".join(str(d) for d in a.shape) + "\n")
        flat = np.ascontiguousarray(a).reshape(-1)
        f.write("\n".join(repr(float(v)) for v in flat) + "\n")


shape = (2, 3, 4)
save("f8", rng.normal(size=shape))
save("f4", rng.normal(size=shape).astype("<f4"))
save("f2", np.array([0, 1, -2.5, 65504, 6e-8, 1e-5, np.inf, -np.inf, np.nan, 0.1, -0.0, 3], dtype="<f2").reshape(3, 4))
for dt in ["i1", "i2", "i4", "i8"]:
    info = np.iinfo(dt)
    a = rng.integers(-100, 100, size=shape).astype(dt)
    a.flat[0] = info.min + (1 if dt == "i4" else 0)
    a.flat[1] = info.max if dt != "i8" else 2**53
    save(dt, a)
for dt in ["u1", "u2", "u4", "u8"]:
    a = rng.integers(0, 200, size=shape).astype(dt)
    a.flat[1] = np.iinfo(dt).max if dt != "u8" else 2**53
    save(dt, a)
save("i4_min", np.array([[-2147483648, 5], [7, 2147483647]], dtype="<i4"))
save("b1", rng.random(size=shape) > 0.5)
# big-endian
save("be_f8", rng.normal(size=(3, 5)).astype(">f8"))
save("be_i4", rng.integers(-1000, 1000, size=(3, 5)).astype(">i4"))
save("be_f2", rng.normal(size=(4, 2)).astype(">f2"))
save("be_u2", rng.integers(0, 60000, size=(5,)).astype(">u2"))
# Fortran order, other ranks, empty
save("fortran_f8", np.asfortranarray(rng.normal(size=shape)))
save("fortran_i2", np.asfortranarray(rng.integers(-50, 50, size=(3, 2, 2, 2)).astype("<i2")))
save("rank0", np.array(3.25))
save("rank1", np.arange(5, dtype="<f8") / 4)
save("rank4", rng.normal(size=(2, 3, 2, 2)))
save("empty", np.zeros((0, 3)))
# unsupported
np.save(os.path.join(OUT, "complex.npy"), np.array([1 + 2j, 3 - 1j], dtype="<c16"))
np.save(os.path.join(OUT, "strings.npy"), np.array(["ab", "c"]))

# archives: stored and deflate-compressed
arrs = dict(a=np.arange(12, dtype="<f8").reshape(3, 4), b=np.array([True, False, True]),
            c=np.arange(24, dtype=">i2").reshape(2, 3, 4))
np.savez(os.path.join(OUT, "stored.npz"), **arrs)
np.savez_compressed(os.path.join(OUT, "compressed.npz"), **arrs)

# An RDMs file in rsatoolbox's HDF5 layout (RDMs.save(file_type='hdf5'), which calls
# rsatoolbox.io.hdf5.write_dict_hdf5): written with h5py exactly as rsatoolbox does.
try:
    import h5py
    n_cond, n_rdm = 5, 3
    diss = rng.random(size=(n_rdm, n_cond * (n_cond - 1) // 2))
    with h5py.File(os.path.join(OUT, "rsatoolbox_rdms.h5"), "w") as f:
        f.attrs["rsatoolbox_version"] = "0.0.1"
        f["dissimilarities"] = diss
        d = f.create_group("descriptors")
        d.attrs["session"] = "one"
        r = f.create_group("rdm_descriptors")
        r["index"] = np.array(list(range(n_rdm)))
        r["name"] = np.array(["subj1", "subj2", "subj3"]).astype("S")
        r["roi"] = np.array([1.5, 2.5, 3.5])
        p = f.create_group("pattern_descriptors")
        p["index"] = np.array(list(range(n_cond)))
        p["conds"] = np.array(["face", "body", "house", "tree", "car"]).astype("S")
        f.attrs["dissimilarity_measure"] = "correlation"
    with open(os.path.join(OUT, "rsatoolbox_rdms.txt"), "w") as fh:
        fh.write(f"{n_rdm} {diss.shape[1]}\n")
        fh.write("\n".join(repr(float(v)) for v in diss.reshape(-1)) + "\n")
    # and a plain 2-d dataset for read_h5()
    with h5py.File(os.path.join(OUT, "plain.h5"), "w") as f:
        f["grp/x"] = np.arange(6, dtype="<f8").reshape(2, 3)
        f["y"] = np.arange(24, dtype="<i4").reshape(2, 3, 4)
except ImportError:
    print("h5py not found: HDF5 fixtures not written")

# strings beside activations (ids), numpy str_ ('<U') and bytes_ ('S'), and a member
# numpy can only pickle (object dtype), which read_npz() skips with a warning
ids = np.array([f"img{i}" for i in range(1, 6)])
np.savez(os.path.join(OUT, "with_ids.npz"), acts=np.arange(15, dtype="<f8").reshape(5, 3), ids=ids,
         bytes_ids=np.array([b"a", b"bb", b"ccc"]), unicode=np.array([["caf\u00e9", "\u732b"], ["x", ""]]),
         big_endian=np.array(["ab", "c"], dtype=">U2"), fortran=np.asfortranarray(np.array([["a", "b", "c"], ["d", "e", "f"]])))
np.savez(os.path.join(OUT, "with_object.npz"), acts=np.arange(4, dtype="<f8"), obj=np.array([1, "a"], dtype=object))
