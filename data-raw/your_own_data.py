#!/usr/bin/python3
# The small data sets of the "Your own data" vignette and of tests/testthat/test-neural.R,
# all made from one latent description of 12 images (3 categories x 4), so that model
# and "brain" agree for a reason. Written with numpy and h5py (python3-numpy,
# python3-h5py); run from the package root:   /usr/bin/python3 data-raw/your_own_data.py
#
# * inst/extdata/toy_activations.npz: a model's activations saved with numpy
#   (conv1: 12 x 4 x 2 x 4, fc: 12 x 16) beside the stimulus ids (a '<U' string array);
# * inst/extdata/toy_spike_counts.csv: spike counts in long form (subject, area,
#   stimulus, unit, trial, count), 2 monkeys x 2 areas x 10 units x 12 images x 5
#   trials, one silent unit;
# * inst/extdata/toy_fmri_betas.csv: 3 subjects x 12 images x 40 voxels, 3 voxels per
#   subject NA (outside that subject's mask);
# * inst/extdata/toy_rdm_subject{1,2,3}.csv: per-subject RDMs (correlation distance of
#   the complete voxels) as square tables, each in its own stimulus order;
# * inst/extdata/toy_rdms_rsatoolbox.h5: two IT RDMs in rsatoolbox's HDF5 layout
#   (rsatoolbox.rdm.RDMs.save(..., file_type="hdf5")), conditions in another order;
# * inst/extdata/toy_units.nwb: an NWB 2.x file, see below.
#
# The NWB file follows the NWB 2.x schema (core namespace 2.6.0):
# an extracellular recording with an electrodes table (two areas), a Units table
# (ragged spike_times with spike_times_index, one electrode per unit through a
# DynamicTableRegion), a trials table with a custom `stimulus` column, and an epochs
# table with ragged `tags`. pynwb is not needed (and not installed here).
#
# Beside it, for the tests, tests/testthat/fixtures/nwb/toy_units_expected.txt holds: every spike time, unit and trial
# value in repr() form, so the R test checks read_nwb() against what was written.
import os
import uuid
import numpy as np
import h5py

OUT = "inst/extdata/toy_units.nwb"
EXP = "tests/testthat/fixtures/nwb/toy_units_expected.txt"
os.makedirs(os.path.dirname(EXP), exist_ok=True)
rng = np.random.default_rng(14)
vlen = h5py.string_dtype(encoding="utf-8")

# the latent world: 12 images in 3 categories; each image is its category's mean plus
# its own variation
stimuli = [f"img{i:02d}" for i in range(1, 13)]
category = np.repeat([0, 1, 2], 4)
cat_means = rng.normal(size=(3, 6)) * 1.5
z = cat_means[category] + rng.normal(size=(12, 6))


def softplus(x):
    return np.log1p(np.exp(x))


# ---- the model's activations, saved with numpy -----------------------------------------
conv1 = (z @ rng.normal(size=(6, 32)) + rng.normal(size=(12, 32)) * 1.5).reshape(12, 4, 2, 4)
fc = np.tanh(cat_means[category] @ rng.normal(size=(6, 16)) * 0.5) + rng.normal(size=(12, 16)) * 0.1
np.savez("inst/extdata/toy_activations.npz", ids=np.array(stimuli), conv1=conv1, fc=fc)

# ---- spike counts in long form (two monkeys, V4 and IT) ---------------------------------
rows = ["subject,area,stimulus,unit,trial,count"]
for subj in ["m1", "m2"]:
    for area in ["V4", "IT"]:
        drive = z if area == "V4" else cat_means[category] + 0.3 * z
        for u in range(10):
            rate = 4 + 20 * softplus(drive @ rng.normal(size=6) * 0.6) / 3
            if subj == "m2" and area == "IT" and u == 9:
                rate = np.zeros(12)  # a silent unit
            for t in range(5):
                counts = rng.poisson(rate * 0.2)
                for s_i, s in enumerate(stimuli):
                    rows.append(f"{subj},{area},{s},{subj}_{area}_u{u + 1:02d},{t + 1},{counts[s_i]}")
with open("inst/extdata/toy_spike_counts.csv", "w") as f:
    f.write("\n".join(rows) + "\n")

# ---- fMRI betas with NA voxels, and per-subject RDMs in their own orders -----------------
beta_rows = ["subject,stimulus," + ",".join(f"v{v + 1:02d}" for v in range(40))]
for subj in range(1, 4):
    b = z @ rng.normal(size=(6, 40)) * 0.5 + rng.normal(size=(12, 40))
    bad = rng.choice(40, size=3, replace=False)
    b_na = b.copy()
    b_na[:, bad] = np.nan
    for s_i, s in enumerate(stimuli):
        beta_rows.append(f"sub{subj},{s}," + ",".join("NA" if np.isnan(v) else repr(round(float(v), 6)) for v in b_na[s_i]))
    keep = np.setdiff1d(np.arange(40), bad)
    r = 1 - np.corrcoef(b[:, keep])
    order = rng.permutation(12)
    with open(f"inst/extdata/toy_rdm_subject{subj}.csv", "w") as f:
        f.write("," + ",".join(stimuli[i] for i in order) + "\n")
        for i in order:
            f.write(stimuli[i] + "," + ",".join(repr(round(float(r[i, j]), 8)) for j in order) + "\n")
with open("inst/extdata/toy_fmri_betas.csv", "w") as f:
    f.write("\n".join(beta_rows) + "\n")

# ---- two IT RDMs in rsatoolbox's HDF5 layout --------------------------------------------
order = rng.permutation(12)
pairs = [(i, j) for i in range(12) for j in range(i + 1, 12)]
diss = []
for k in range(2):
    pat = cat_means[category] + 0.3 * z + rng.normal(size=(12, 6)) * 0.7
    pat = pat[order]
    c = 1 - np.corrcoef(pat @ rng.normal(size=(6, 30)))
    diss.append([c[i, j] for i, j in pairs])
with h5py.File("inst/extdata/toy_rdms_rsatoolbox.h5", "w") as f:
    f.attrs["rsatoolbox_version"] = "0.1.5"
    f.attrs["dissimilarity_measure"] = "correlation"
    f.create_dataset("dissimilarities", data=np.array(diss))
    f.create_group("descriptors")
    rd = f.create_group("rdm_descriptors")
    rd.create_dataset("index", data=np.arange(2))
    rd.create_dataset("name", data=np.array([b"lab2_IT_session1", b"lab2_IT_session2"]))
    pd = f.create_group("pattern_descriptors")
    pd.create_dataset("index", data=np.arange(12))
    pd.create_dataset("conds", data=np.array([stimuli[i].encode() for i in order]))

# ---- the NWB file: 12 images x 4 repetitions, shuffled, 0.2 s on, 0.3 s off -------------
order = np.concatenate([rng.permutation(12) for _ in range(4)])
start = 1.0 + 0.5 * np.arange(len(order))
stop = start + 0.2
trial_stim = [stimuli[i] for i in order]

# 8 units on 8 electrodes; electrodes 0-3 in "V4", 4-7 in "IT". V4 units follow the
# images' own variation, IT units their category; spikes are Poisson within each trial
# window plus a low background.
n_units = 8
electrode_location = ["V4"] * 4 + ["IT"] * 4
tuning = np.array([4 + 25 * softplus((z if u < 4 else cat_means[category] + 0.3 * z) @ rng.normal(size=6) * 0.6) / 3
                   for u in range(n_units)])  # spikes/s during the 0.2 s window
spikes = []
for u in range(n_units):
    t = []
    for k, s in enumerate(order):
        n = rng.poisson(tuning[u, s] * 0.2)
        t.extend(start[k] + 0.2 * rng.random(n))
    n_bg = rng.poisson(2.0 * (stop[-1] + 1.0))
    t.extend((stop[-1] + 1.0) * rng.random(n_bg))
    # round to 0.1 ms so the values are short to print
    spikes.append(np.sort(np.round(np.array(t), 4)))
spike_times = np.concatenate(spikes)
spike_index = np.cumsum([len(s) for s in spikes]).astype(np.uint32)


def table(group, colnames, description):
    group.attrs["namespace"] = "hdmf-common"
    group.attrs["neurodata_type"] = "DynamicTable"
    group.attrs["object_id"] = str(uuid.UUID(int=rng.integers(2**63)))
    group.attrs["colnames"] = np.array(colnames, dtype=object).astype(vlen)
    group.attrs["description"] = description


def column(group, name, data, description, dtype=None, neurodata_type="VectorData"):
    d = group.create_dataset(name, data=data, dtype=dtype)
    d.attrs["namespace"] = "hdmf-common"
    d.attrs["neurodata_type"] = neurodata_type
    d.attrs["object_id"] = str(uuid.UUID(int=rng.integers(2**63)))
    d.attrs["description"] = description
    return d


def ids(group, n):
    d = group.create_dataset("id", data=np.arange(n, dtype=np.int64))
    d.attrs["namespace"] = "hdmf-common"
    d.attrs["neurodata_type"] = "ElementIdentifiers"
    d.attrs["object_id"] = str(uuid.UUID(int=rng.integers(2**63)))


def index(group, name, target, data):
    d = column(group, name, np.asarray(data, dtype=np.uint32), f"Index for VectorData '{target.name.split('/')[-1]}'",
               neurodata_type="VectorIndex")
    d.attrs["target"] = target.ref
    del d.attrs["description"]
    return d


with h5py.File(OUT, "w") as f:
    f.attrs["namespace"] = "core"
    f.attrs["neurodata_type"] = "NWBFile"
    f.attrs["nwb_version"] = "2.6.0"
    f.attrs["object_id"] = str(uuid.UUID(int=rng.integers(2**63)))
    f.create_dataset("identifier", data="tensorscope-toy-units", dtype=vlen)
    f.create_dataset("session_description", data="Toy extracellular recording: 12 images x 4 repetitions, V4 and IT",
                     dtype=vlen)
    f.create_dataset("session_start_time", data="2024-01-01T10:00:00+00:00", dtype=vlen)
    f.create_dataset("timestamps_reference_time", data="2024-01-01T10:00:00+00:00", dtype=vlen)
    f.create_dataset("file_create_date", data=np.array(["2024-01-01T10:00:00+00:00"], dtype=object), dtype=vlen)
    for g in ["acquisition", "analysis", "processing", "stimulus/presentation", "stimulus/templates"]:
        f.create_group(g)

    ephys = f.create_group("general/extracellular_ephys")
    groups = {}
    for area in ["V4", "IT"]:
        g = ephys.create_group(f"array_{area}")
        g.attrs["namespace"] = "core"
        g.attrs["neurodata_type"] = "ElectrodeGroup"
        g.attrs["description"] = f"Utah array in {area}"
        g.attrs["location"] = area
        groups[area] = g
    el = ephys.create_group("electrodes")
    table(el, ["location", "group", "group_name", "x", "y", "z", "imp", "filtering"], "metadata about extracellular electrodes")
    ids(el, n_units)
    column(el, "location", np.array(electrode_location, dtype=object), "the location of channel within the subject e.g. brain region", dtype=vlen)
    refs = np.array([groups[a].ref for a in electrode_location], dtype=h5py.ref_dtype)
    column(el, "group", refs, "a reference to the ElectrodeGroup this electrode is a part of", dtype=h5py.ref_dtype)
    column(el, "group_name", np.array([f"array_{a}" for a in electrode_location], dtype=object), "the name of the ElectrodeGroup", dtype=vlen)
    for ax, vals in zip("xyz", [np.arange(n_units) * 0.4, np.zeros(n_units), np.full(n_units, 1.5)]):
        column(el, ax, vals.astype(np.float64), f"the {ax} coordinate of the channel location")
    column(el, "imp", np.full(n_units, 5e5), "the impedance of the channel, in ohms")
    column(el, "filtering", np.array(["300-6000 Hz"] * n_units, dtype=object), "description of hardware filtering", dtype=vlen)

    units = f.create_group("units")
    table(units, ["spike_times", "electrodes"], "sorted units")
    units.attrs["namespace"] = "core"
    units.attrs["neurodata_type"] = "Units"
    ids(units, n_units)
    st = column(units, "spike_times", spike_times.astype(np.float64), "the spike times for each unit in seconds")
    st.attrs["resolution"] = 1e-4
    index(units, "spike_times_index", st, spike_index)
    er = column(units, "electrodes", np.arange(n_units, dtype=np.int64), "the electrode each unit was recorded on",
                neurodata_type="DynamicTableRegion")
    er.attrs["table"] = el.ref
    index(units, "electrodes_index", er, np.arange(1, n_units + 1))

    tr = f.create_group("intervals/trials")
    table(tr, ["start_time", "stop_time", "stimulus"], "experimental trials")
    tr.attrs["namespace"] = "core"
    tr.attrs["neurodata_type"] = "TimeIntervals"
    ids(tr, len(order))
    column(tr, "start_time", start, "Start time of epoch, in seconds")
    column(tr, "stop_time", stop, "Stop time of epoch, in seconds")
    column(tr, "stimulus", np.array(trial_stim, dtype=object), "image shown", dtype=vlen)

    ep = f.create_group("intervals/epochs")
    table(ep, ["start_time", "stop_time", "tags"], "experimental epochs")
    ep.attrs["namespace"] = "core"
    ep.attrs["neurodata_type"] = "TimeIntervals"
    ids(ep, 2)
    column(ep, "start_time", np.array([0.0, 1.0]), "Start time of epoch, in seconds")
    column(ep, "stop_time", np.array([1.0, stop[-1]]), "Stop time of epoch, in seconds")
    tags = column(ep, "tags", np.array(["baseline", "task", "images"], dtype=object), "User-defined tags", dtype=vlen)
    index(ep, "tags_index", tags, [1, 3])

with open(EXP, "w") as f:
    f.write("units " + " ".join(str(len(s)) for s in spikes) + "\n")
    f.write("location " + " ".join(electrode_location) + "\n")
    f.write("stimulus " + " ".join(trial_stim) + "\n")
    f.write("start_time " + " ".join(repr(float(v)) for v in start) + "\n")
    f.write("stop_time " + " ".join(repr(float(v)) for v in stop) + "\n")
    f.write("spike_times " + " ".join(repr(float(v)) for v in spike_times) + "\n")
print(OUT, os.path.getsize(OUT), "bytes;", len(spike_times), "spikes")
