"""Build script: metadata lives in setup.cfg; the package list is computed here.

The TensorBoard plugin's importable package `tensorboard_plugin_cnnvis` lives under
`tensorboard_plugin/` and is mapped with `package_dir`.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["keras_cnnvis", "keras_cnnvis.*"])
    + ["tensorboard_plugin_cnnvis"],
    package_dir={"tensorboard_plugin_cnnvis": "tensorboard_plugin/tensorboard_plugin_cnnvis"},
)
