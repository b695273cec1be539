"""Installable package ``resnest``: ResNeSt for MXNet Gluon (models, weights, data, training)."""
from setuptools import find_packages, setup

setup(
    name="resnest",
    version="0.1.0",
    description="ResNeSt (Split-Attention Networks) for MXNet Gluon: model zoo, "
                "published weights, RecordIO data, Horovod training, fast CPU inference",
    packages=find_packages(include=["resnest", "resnest.*"]),
    package_data={"resnest.gluon.classes": ["*.tsv"]},
    python_requires=">=3.8",
    # MXNet is an extra, not a requirement: GPU users install mxnet-cuXXX instead of the CPU
    # build, and pip must not pull the CPU wheel in beside it (see README).
    install_requires=["numpy<1.24", "opencv-python", "Pillow", "tqdm"],
    extras_require={
        "cpu": ["mxnet==1.9.1"],
        # pycocotools: COCO annotations, RLE masks and mAP; scikit-image: the photos of the
        # composed segmentation / detection set.
        "train": ["gluoncv==0.10.5.post0", "matplotlib", "scikit-learn", "scipy", "pandas",
                  "pycocotools", "scikit-image"],
        # hypothesis: the property-based attacks on the invariants (tests/test_invariants_*)
        "test": ["pytest", "pytest-timeout", "ruff", "hypothesis"],
        # Export and the other inference engines (optimize(backend="onnxruntime"/"openvino"))
        # and the int8 study's real photos (scikit-image's bundled images); pinned together in
        # constraints.txt.
        "deploy": ["onnx", "onnxruntime", "openvino", "ml_dtypes", "sympy", "scikit-image"],
    },
)
