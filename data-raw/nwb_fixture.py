#!/usr/bin/python3
# A small NWB 2.x file for tests/testthat/test-neural.R and the "Your own data" vignette,
# written with h5py (python3-h5py) following the NWB 2.x schema (core namespace 2.6.0):
# an extracellular recording with an electrodes table (two areas), a Units table
# (ragged spike_times with spike_times_index, one electrode per unit through a
# DynamicTableRegion), a trials table with a custom `stimulus` column, and an epochs
# table with ragged `tags`. pynwb is not needed (and not installed here).
#
# Run from the package root:   /usr/bin/python3 data-raw/nwb_fixture.py
# Writes inst/extdata/toy_units.nwb (a few tens of KB) and, beside it for the tests,
# tests/testthat/fixtures/nwb/toy_units_expected.txt: every spike time, unit and trial
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

# design: 6 stimuli x 4 repetitions, shuffled, 0.2 s on, 0.3 s off
stimuli = [f"img{i:02d}" for i in range(1, 7)]
order = np.concatenate([rng.permutation(6) for _ in range(4)])
start = 1.0 + 0.5 * np.arange(len(order))
stop = start + 0.2
trial_stim = [stimuli[i] for i in order]

# 5 units on 5 electrodes; electrodes 0-2 in "V4", 3-4 in "IT". Each unit has a
# preferred stimulus profile; spikes are Poisson within each trial window plus a
# low background.
n_units = 5
electrode_location = ["V4", "V4", "V4", "IT", "IT"]
tuning = rng.gamma(2.0, 10.0, size=(n_units, 6))  # spikes/s during the 0.2 s window
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
    f.create_dataset("session_description", data="Toy extracellular recording: 6 images x 4 repetitions, V4 and IT",
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
