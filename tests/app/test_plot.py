"""ctest for scripts/plot.py: draws the figures of a synthetic sweep (plot_fixture.py) and checks
each PNG with an independent reader (signature, chunk CRCs, IHDR size, the inflated pixel data,
and, where Pillow is installed, that the picture is not blank), the accuracy table it prints, and
its errors (a file that is not a results file, an existing PNG).

    python3 tests/app/test_plot.py                    # the synthetic sweep
    HOGWILD_PLOT_RESULTS=results/sweep python3 tests/app/test_plot.py   # also a real sweep output

Exits 77 (ctest: skipped) when numpy, h5py or matplotlib is missing.
"""
import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLOT = os.path.join(ROOT, "scripts", "plot.py")

try:
    import h5py  # noqa: F401
    import matplotlib  # noqa: F401
    import numpy  # noqa: F401
except ImportError as missing:
    print(f"SKIP: {sys.executable} lacks {missing.name} (apt-get install python3-h5py "
          "python3-matplotlib)")
    sys.exit(77)

sys.path.insert(0, HERE)
from plot_fixture import CHECKPOINTS, write_results, write_synthetic_sweep  # noqa: E402


def plot(*args):
    return subprocess.run([sys.executable, PLOT, *args], capture_output=True, text=True,
                          timeout=300)


def png_info(path):
    """(width, height) of a PNG, after checking its structure without any PNG library."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: no PNG signature"
    at, chunks, idat = 8, [], b""
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path}: bad CRC in chunk {kind}"
        chunks.append(kind)
        if kind == b"IDAT":
            idat += body
        at += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks, chunks
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    # Each row: one filter byte, then the pixels.
    assert len(zlib.decompress(idat)) == height * (1 + width * channels * depth // 8), path
    return width, height


class Plot(unittest.TestCase):
    def setUp(self):
        self.temp = tempfile.TemporaryDirectory(prefix="hogwild-plot-")
        self.dir = self.temp.name
        self.sweep = os.path.join(self.dir, "sweep")
        self.runs = write_synthetic_sweep(self.sweep)
        self.out = os.path.join(self.dir, "out")

    def tearDown(self):
        self.temp.cleanup()

    def assert_png(self, path, min_width=600, min_height=250):
        self.assertTrue(os.path.isfile(path), f"missing {path}")
        width, height = png_info(path)
        self.assertTrue(min_width <= width <= 4000 and min_height <= height <= 4000,
                        f"{path}: {width}x{height}")
        try:
            from PIL import Image
        except ImportError:
            return
        with Image.open(path) as image:
            pixels = numpy.asarray(image.convert("RGB")).reshape(-1, 3).astype(numpy.int32)
        colours = len(numpy.unique(pixels[:, 0] << 16 | pixels[:, 1] << 8 | pixels[:, 2]))
        inked = float(numpy.mean(pixels.sum(axis=1) < 720))
        self.assertGreater(colours, 20, f"{path}: only {colours} colours")
        self.assertGreater(inked, 0.02, f"{path}: {inked:.1%} of it is not white")

    def test_draws_every_figure_and_the_table(self):
        result = plot(self.sweep, "--out", self.out)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        for name in ("accuracy_vs_budget.png", "throughput.png", "time_breakdown.png",
                     "timeline_method_hogwild_workers_2_p0.png"):
            self.assert_png(os.path.join(self.out, name))
        self.assertEqual(sorted(n for n in os.listdir(self.out) if n.startswith("timeline_")),
                         ["timeline_method_hogwild_workers_2_p0.png"])
        # The table: each run's accuracy at each checkpoint, as the fixture defines it.
        lines = result.stdout.splitlines()
        header = next(line for line in lines if line.startswith("run "))
        self.assertEqual(header.split()[2:], [str(c) for c in CHECKPOINTS] + ["final"])
        for run in self.runs.values():
            label = run["attrs"].get("run_id", "1 worker, combined")
            row = next(line for line in lines if line.startswith(label + " "))
            cells = row[len(label):].split()
            self.assertEqual(cells[0], "3", row)
            want = ["-" if v is None else f"{v:.1f}" for v in run["expected"]]
            self.assertEqual(cells[1:], want, row)
        # What the legacy run lacks is said, not silently dropped.
        self.assertIn("1 worker, combined: no checkpoints", result.stdout)
        self.assertIn("1 worker, combined has no /timings table", result.stdout)
        self.assertIn("no batch_problems panel (every run has batch_problems 4)", result.stdout)

    def test_timelines_of_one_problem_and_of_all(self):
        result = plot(self.sweep, "--out", self.out, "--problem", "p1")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        timelines = sorted(n for n in os.listdir(self.out) if n.startswith("timeline_"))
        self.assertEqual(timelines, ["timeline_method_hogwild_workers_2_p1.png",
                                     "timeline_method_hogwild_workers_4_p1.png",
                                     "timeline_single_p1.png"])
        for name in timelines:
            self.assert_png(os.path.join(self.out, name), min_height=200)
        every = os.path.join(self.dir, "every")
        result = plot(os.path.join(self.sweep, "single.h5"), "--out", every, "--all-timelines")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(sorted(n for n in os.listdir(every) if n.startswith("timeline_")),
                         [f"timeline_single_p{i}.png" for i in range(3)])
        result = plot(self.sweep, "--out", self.out, "--problem", "nope", "--overwrite")
        self.assertEqual(result.returncode, 2)
        self.assertIn("no run has problem 'nope'", result.stderr)

    def test_default_out_is_plots_beside_the_input(self):
        single = os.path.join(self.sweep, "single.h5")
        result = plot(single)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # One run: no throughput or time figure, each skip said once with its reason.
        self.assertIn("skipped throughput.png", result.stdout)
        self.assertIn("skipped time_breakdown.png: no run has a /timings table", result.stdout)
        self.assert_png(os.path.join(self.sweep, "plots", "accuracy_vs_budget.png"))
        self.assert_png(os.path.join(self.sweep, "plots", "timeline_single_p0.png"),
                        min_height=200)
        self.assertFalse(os.path.exists(os.path.join(self.sweep, "plots", "throughput.png")))

    def test_a_file_that_is_not_results_is_one_error_line(self):
        bad = os.path.join(self.dir, "notes.h5")
        with open(bad, "w") as f:
            f.write("not hdf5\n")
        result = plot(bad, "--out", self.out)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr.strip().splitlines(),
                         [f"plot: {bad} is not a hogwild results file (not HDF5)"])
        other = os.path.join(self.dir, "other.h5")
        with h5py.File(other, "w") as f:
            f.attrs["x"] = 1
        result = plot(self.sweep, other, "--out", self.out)
        self.assertEqual(result.returncode, 2)
        self.assertIn(f"{other} is not a hogwild results file (no /problems group)",
                      result.stderr)
        empty = os.path.join(self.dir, "empty")
        os.mkdir(empty)
        result = plot(empty)
        self.assertEqual(result.returncode, 2)
        self.assertIn(f"folder {empty} holds no *.h5 results files", result.stderr)
        result = plot(os.path.join(self.dir, "missing.h5"))
        self.assertEqual(result.returncode, 2)
        self.assertIn("missing.h5 does not exist", result.stderr)
        self.assertFalse(os.path.exists(self.out))

    def test_an_existing_png_is_kept_unless_overwrite(self):
        os.mkdir(self.out)
        existing = os.path.join(self.out, "throughput.png")
        with open(existing, "wb") as f:
            f.write(b"precious")
        result = plot(self.sweep, "--out", self.out)
        self.assertEqual(result.returncode, 2)
        self.assertIn(f"{existing} exists (pass --overwrite", result.stderr)
        with open(existing, "rb") as f:
            self.assertEqual(f.read(), b"precious")
        self.assertEqual(os.listdir(self.out), ["throughput.png"])  # nothing else written
        result = plot(self.sweep, "--out", self.out, "--overwrite")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assert_png(existing)

    def test_runs_without_any_optional_item(self):
        # Only the original layout: no checkpoints, events, started_pass, run_id, timings.
        # Its first problem has no finished step (a short budget): one unfinished step per lane.
        run = dict(self.runs["single.h5"], attrs={"workers": 1, "layout": "combined"})
        run["problems"] = [dict(run["problems"][0], steps=[])] + run["problems"][1:]
        path = os.path.join(self.dir, "old.h5")
        write_results(path, run)
        result = plot(path, "--out", self.out)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("skipped throughput.png", result.stdout)
        self.assert_png(os.path.join(self.out, "timeline_old_p0.png"), min_height=200)

    def test_a_table_without_its_fields_is_ignored_and_said(self):
        path = os.path.join(self.sweep, "method=hogwild,workers=4.h5")
        with h5py.File(path, "a") as f:
            del f["problems/p0/checkpoints"]
            f["problems/p0"].create_dataset("checkpoints", data=numpy.zeros(2, [("x", "<i4")]))
        result = plot(path, "--out", self.out)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"{path}: problem p0: /checkpoints lacks checkpoint, correct; ignored",
                      result.stdout)
        # p0 (96 passes, right) counts from its final answer from 128 passes on, as no row
        # says otherwise, and as wrong before.
        row = next(line for line in result.stdout.splitlines() if line.startswith("method="))
        self.assertEqual(row.split()[2:], ["0.0", "0.0", "100.0", "66.7", "66.7"])
        self.assert_png(os.path.join(self.out, "accuracy_vs_budget.png"))

    @unittest.skipUnless(os.environ.get("HOGWILD_PLOT_RESULTS"), "HOGWILD_PLOT_RESULTS unset")
    def test_real_results(self):
        inputs = os.environ["HOGWILD_PLOT_RESULTS"].split(os.pathsep)
        result = plot(*inputs, "--out", self.out, "--all-timelines")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        print(result.stdout)
        pngs = [n for n in os.listdir(self.out) if n.endswith(".png")]
        self.assertTrue(pngs)
        for name in pngs:
            self.assert_png(os.path.join(self.out, name), min_width=300, min_height=200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
