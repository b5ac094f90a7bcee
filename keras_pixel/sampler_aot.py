"""Samplers compiled ahead of time: a warm ``keras-pixel sample`` without TensorFlow
(opt-in: ``KERAS_PIXEL_AOT=on``).

A warm call of a cached SavedModel sampler (:mod:`keras_pixel.sampler_cache`)
still spends most of its time starting TensorFlow (its import alone takes 4-6 s
on a 2-core machine) and looking its graph up in XLA's cache. This module
compiles the same sampler once more with XLA's ahead-of-time compiler
(``tfcompile``, TensorFlow's ``saved_model_cli aot_compile_cpu``) into a small
shared library, for one number of images: a later ``keras-pixel sample`` with
that number loads it with :mod:`ctypes` and calls it, and never imports
TensorFlow or Keras.

The same sampler, not always the same images. The library runs the graph of
:func:`keras_pixel.sampling.fill_in_graph` and takes the sampler's uniform noise
as an input, computed by :func:`keras_pixel.philox.draw_noise` bit for bit as
TensorFlow's CPU kernels compute it for ``model.sample`` (XLA's own random ops
give other numbers). But its convolutions and matrix products run the Eigen
kernels of TensorFlow's AOT runtime, compiled here, where the jit-compiled
sampler runs TensorFlow's own build of them, with its custom contraction
kernel: the float32 sums are taken in another order and differ in their last
bits, and now and then a subpixel's uniform noise falls between the two
computed cumulative probabilities, so that subpixel, and the rest of its image,
is drawn differently. ``pixelcnn_pp_mnist``, 16 images for each of seeds 0-19,
AMD EPYC (AVX2): 3 of the 320 images differ from ``model.sample``'s. TensorFlow
itself changes as many when only its contraction kernel changes
(``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0``: 3 of 320), and compiling the
runtime with ``-mavx``, as TensorFlow's wheel is, changed none of the 3. Both
are draws from the model, but a seed would no longer name one grid of images
(the first ``keras-pixel sample`` draws with TensorFlow, the later ones would
draw with the library): this layer is off unless
``$KERAS_PIXEL_AOT`` is ``on`` (or ``1``, ``true``, ``yes``), and by default a
warm ``keras-pixel sample`` uses the sampling server
(:mod:`keras_pixel.sampler_server`, also without TensorFlow in the command) or
the SavedModel sampler, which draw ``model.sample``'s images (320 of 320 the
same in that measurement).

Building needs a C++ compiler (``$CXX``, else ``c++``) and TensorFlow's
``tfcompile`` (Linux wheels ship both its Python binding and the sources of
its small runtime). The runtime is compiled once per TensorFlow version into
``<cache>/aot-runtime/`` (a few minutes on 2 cores, in the background builder);
each sampler then takes about 30 s.
"""

import ctypes
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

from keras_pixel import philox

ENV = "KERAS_PIXEL_AOT"
INFO = "keras_pixel_aot.json"
LIBRARY = "sampler.so"
_CLASS = "KerasPixelSampler"
_SHIM = """#include "sampler.h"

extern "C" {
void* kp_new() { return new %(cls)s(); }
void kp_delete(void* f) { delete static_cast<%(cls)s*>(f); }
int kp_arg_index(void* f, const char* name) {
  return static_cast<%(cls)s*>(f)->LookupArgIndex(name);
}
int kp_result_index(void* f, const char* name) {
  return static_cast<%(cls)s*>(f)->LookupResultIndex(name);
}
void kp_set_arg(void* f, int index, const void* data) {
  static_cast<%(cls)s*>(f)->set_arg_data(index, data);
}
int kp_run(void* f) { return static_cast<%(cls)s*>(f)->Run() ? 0 : 1; }
const void* kp_result(void* f, int index) {
  return static_cast<%(cls)s*>(f)->result_data(index);
}
}
"""


def enabled():
    """Whether ``$KERAS_PIXEL_AOT`` turns this layer on (``on``, ``1``, ``true``,
    ``yes``); off by default, since its images can differ from ``model.sample``'s
    (see the module's docstring)."""
    return os.environ.get(ENV, "off").strip().lower() in ("1", "on", "true", "yes")


def entry_path(cache_entry, num):
    """The folder of the compiled sampler for ``num`` images beside the cached
    SavedModel sampler ``cache_entry`` (see :func:`keras_pixel.sampler_cache.entry_path`)."""
    return f"{cache_entry}.aot/{int(num)}"


def find(cache_entry, num):
    """The compiled sampler for ``num`` images of ``cache_entry``, or None."""
    path = entry_path(cache_entry, num)
    done = os.path.isfile(os.path.join(path, INFO)) and os.path.isfile(os.path.join(path, LIBRARY))
    return path if enabled() and done else None


class CompiledSampler:
    """A sampler compiled for a fixed number of images, loaded from its folder.

    ``draw(temperature, seed, labels)`` draws ``num`` images as
    ``model.sample(num, temperature, seed, labels=labels)`` does (the same
    images but where float32 rounding tips a subpixel, see the module's
    docstring), numpy ``[num, H, W, C]`` in the model's image dtype; ``info`` is what
    :func:`compile_sampler` recorded (``num``, ``image_shape``, ``num_values``,
    ``conditional``, ``num_classes``, ...).
    """

    def __init__(self, path):
        with open(os.path.join(path, INFO)) as f:
            self.info = json.load(f)
        self._lib = ctypes.CDLL(os.path.join(path, LIBRARY))
        self._lib.kp_new.restype = ctypes.c_void_p
        self._lib.kp_arg_index.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._lib.kp_result_index.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._lib.kp_set_arg.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._lib.kp_run.argtypes = [ctypes.c_void_p]
        self._lib.kp_result.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._lib.kp_result.restype = ctypes.c_void_p
        self._lib.kp_delete.argtypes = [ctypes.c_void_p]
        self._fn = ctypes.c_void_p(self._lib.kp_new())

    def __del__(self):
        fn = getattr(self, "_fn", None)
        if fn is not None:
            self._lib.kp_delete(fn)

    def _index(self, lookup, name):
        index = lookup(self._fn, name.encode())
        if index < 0:
            raise RuntimeError(f"the compiled sampler has no {name!r}")
        return index

    def draw(self, temperature, seed, labels=None):
        from keras_pixel.validation import check_labels, check_temperature

        temperature = check_temperature(temperature)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
        info = self.info
        num, shape = info["num"], tuple(info["image_shape"])
        one_hot = check_labels(labels, num, info["num_classes"], name="this model")
        steps = np.arange(int(np.prod(shape)))
        noise = philox.draw_noise(seed, steps, num, info["noise_per_subpixel"])
        inputs = {"feed_noise": noise, "feed_temperature": np.array(temperature, np.float32)}
        if one_hot is not None:
            if not np.issubdtype(np.asarray(labels).dtype, np.integer):
                raise ValueError("the compiled sampler takes integer class ids as labels.")
            inputs["feed_labels"] = one_hot.argmax(-1).astype(np.int32)
        inputs = {name: _aligned(array) for name, array in inputs.items()}
        lib = self._lib
        for name, array in inputs.items():
            lib.kp_set_arg(self._fn, self._index(lib.kp_arg_index, name), array.ctypes.data)
        if lib.kp_run(self._fn) != 0:
            raise RuntimeError("the compiled sampler failed")
        address = lib.kp_result(self._fn, self._index(lib.kp_result_index, "fetch_images"))
        dtype = np.dtype(info["image_dtype"])
        size = num * int(np.prod(shape)) * dtype.itemsize
        buffer = (ctypes.c_char * size).from_address(address)
        return np.frombuffer(buffer, dtype).reshape(num, *shape).copy()


def _aligned(array, alignment=64):
    """A C-contiguous copy of ``array`` at an address that is a multiple of
    ``alignment`` bytes, as XLA's compiled code requires of its inputs."""
    array = np.asarray(array)
    raw = np.empty(array.nbytes + alignment, np.uint8)
    offset = -raw.ctypes.data % alignment
    out = raw[offset : offset + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def _compiler():
    return shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")


def available():
    """Whether this machine can build compiled samplers: this layer on, a C++
    compiler and TensorFlow's ``tfcompile`` binding and runtime sources."""
    if not enabled() or _compiler() is None:
        return False
    try:
        import tensorflow as tf
        from tensorflow.python import _pywrap_tfcompile  # noqa: F401
    except ImportError:
        return False
    return os.path.isdir(_runtime_sources(tf))


def _runtime_sources(tf):
    return os.path.join(os.path.dirname(tf.__file__), "xla_aot_runtime_src")


def _run(command, cwd=None):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed:\n{result.stderr}")


_KERNEL_LIBRARIES = ("dot_lib_", "convolution_lib_", "sort_lib")
_KERNEL_TYPES = {
    "float": "f32",
    "double": "f64",
    "Eigen::half": "f16",
    "int": "s32",
    "signed char": "s8",
    "std::complex<float>": "c64",
    "std::complex<double>": "c128",
}


def _kernels_for(link_error):
    """The kernel libraries (``dot_lib_f32``, ``convolution_lib_f32_2d``, ...)
    that define the symbols a failed link names as undefined, or None when one
    of them is not recognized."""
    names = set()
    for symbol in re.findall(r"undefined reference to `([^']*)'", link_error):
        conv = re.search(r"EigenConv([23])D<([^>]*(?:<[^>]*>)?)>", symbol)
        dot = re.search(r"TypedMatMul<([^,>]*(?:<[^>]*>)?),", symbol)
        if conv and conv.group(2) in _KERNEL_TYPES:
            names.add(f"convolution_lib_{_KERNEL_TYPES[conv.group(2)]}_{conv.group(1)}d")
        elif dot and dot.group(1) in _KERNEL_TYPES:
            names.add(f"dot_lib_{_KERNEL_TYPES[dot.group(1)]}")
        else:
            return None
    return names or None


def runtime_objects(root, kernels=()):
    """TensorFlow's AOT runtime (``xla_aot_runtime_src``) compiled into object
    files under ``root/aot-runtime/<TensorFlow version>/``, each once (written
    whole, then renamed); returns their paths.

    The runtime proper takes seconds to compile, each of its Eigen
    matrix-product, convolution and sort kernels minutes: only the ``kernels``
    named are compiled (``dot_lib_f32``, ...; ``"all"`` for every one), and
    :func:`compile_sampler` names those its link needs.
    """
    import tensorflow as tf

    sources = _runtime_sources(tf)
    folder = os.path.join(root, "aot-runtime", tf.__version__)
    os.makedirs(folder, exist_ok=True)
    files = sorted(glob.glob(os.path.join(sources, "**", "*.cc"), recursive=True))
    if kernels != "all":
        files = [
            f
            for f in files
            if not os.path.basename(f).startswith(_KERNEL_LIBRARIES)
            or os.path.basename(f)[: -len(".cc")] in kernels
        ]
    objects = [
        os.path.join(folder, os.path.relpath(f, sources).replace(os.sep, "_") + ".o") for f in files
    ]
    flags = [*tf.sysconfig.get_compile_flags(), f"-I{sources}", "-O2", "-DNDEBUG", "-fPIC", "-w"]
    todo = [(f, o) for f, o in zip(files, objects, strict=True) if not os.path.isfile(o)]
    jobs = max(1, os.cpu_count() or 1)
    for start in range(0, len(todo), jobs):
        running = []
        for source, obj in todo[start : start + jobs]:
            tmp = f"{obj}.{os.getpid()}.tmp"
            command = [_compiler(), *flags, "-c", source, "-o", tmp]
            running.append((subprocess.Popen(command, stderr=subprocess.PIPE), tmp, obj))
        for process, tmp, obj in running:
            _, err = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"compiling the XLA AOT runtime failed:\n{err.decode()[-3000:]}")
            os.replace(tmp, obj)
    return objects


def fixed_sampler(model, method, num):
    """The sampler as a function of fixed shapes for ``tfcompile``:
    ``(noise [H*W*C, num, noise_per_subpixel] float32, temperature float32
    [, labels int32 [num]]) -> {"images": [num, H, W, C]}`` and its input
    signature."""
    import tensorflow as tf

    from keras_pixel import sampling

    height, width, channels = model.image_shape
    per_subpixel = model.likelihood.noise_per_subpixel

    def sample(noise, temperature, labels=None):
        condition = None if labels is None else tf.cast(model._condition(labels), tf.float32)
        canvas = tf.zeros([num, height, width, channels], tf.int32)
        images = sampling.fill_in_graph(
            model, canvas, 0, None, temperature, condition, method, noise=noise
        )
        return {"images": tf.cast(images, model.image_dtype)}

    spec = [
        tf.TensorSpec([height * width * channels, num, per_subpixel], tf.float32, name="noise"),
        tf.TensorSpec([], tf.float32, name="temperature"),
    ]
    if model.conditional:
        spec.append(tf.TensorSpec([num], tf.int32, name="labels"))
    return sample, spec


def compile_sampler(model, method, num, path, root):
    """Compiles ``model``'s sampler for ``num`` images into ``path`` (whole or
    not at all): ``sampler.so`` and :data:`INFO`. ``root`` holds the runtime
    (:func:`runtime_objects`). Returns ``path``."""
    import tempfile

    import tensorflow as tf

    from keras_pixel import sampler_cache
    from keras_pixel.export.saved_model import write_signatures

    if model.conditional and model.num_classes is None:
        raise ValueError("a model conditioned on vectors has no compiled sampler.")
    fn, spec = fixed_sampler(model, method, num)
    # A class name of its own: the generated header's inline functions hold
    # static tables that the dynamic linker would otherwise share between two
    # compiled samplers loaded into one process.
    cls = f"{_CLASS}_{hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]}"

    def build(tmp):
        os.makedirs(tmp)
        with tempfile.TemporaryDirectory(dir=os.path.dirname(tmp)) as work:
            saved = os.path.join(work, "saved_model")
            write_signatures(model, {"serving_default": (fn, spec)}, saved)
            prefix = os.path.join(work, "out", "sampler")
            _run(
                [
                    sys.executable,
                    "-c",
                    "import sys; from tensorflow.python.tools import saved_model_cli as c; "
                    "sys.argv[0] = 'saved_model_cli'; c.main()",
                    "aot_compile_cpu",
                    "--dir",
                    saved,
                    "--tag_set",
                    "serve",
                    "--signature_def_key",
                    "serving_default",
                    "--output_prefix",
                    prefix,
                    "--cpp_class",
                    cls,
                ]
            )
            out = os.path.join(work, "out")
            with open(os.path.join(out, "shim.cc"), "w") as f:
                f.write(_SHIM % {"cls": cls})
            link = lambda runtime: [  # noqa: E731
                _compiler(),
                *tf.sysconfig.get_compile_flags(),
                f"-I{out}",
                "-O2",
                "-DNDEBUG",
                "-fPIC",
                "-fno-gnu-unique",
                "-shared",
                "-w",
                os.path.join(out, "shim.cc"),
                *sorted(glob.glob(os.path.join(out, "*.o"))),
                *runtime,
                "-o",
                os.path.join(tmp, LIBRARY),
                *tf.sysconfig.get_link_flags(),
                f"-Wl,-rpath,{tf.sysconfig.get_lib()}",
                "-Wl,--no-undefined",
                "-lpthread",
            ]
            try:
                _run(link(runtime_objects(root)))
            except RuntimeError as error:
                kernels = _kernels_for(str(error))
                if kernels is None:
                    raise
                try:
                    _run(link(runtime_objects(root, kernels)))
                except RuntimeError:
                    _run(link(runtime_objects(root, "all")))

    info = {
        **sampler_cache.model_info(model),
        "num": int(num),
        "image_dtype": np.dtype(model.image_dtype).name,
        "noise_per_subpixel": int(model.likelihood.noise_per_subpixel),
        "method": method,
        "tensorflow": tf.__version__,
    }
    return sampler_cache.publish_once(build, path, INFO, info)
