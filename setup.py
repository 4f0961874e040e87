"""Install ringstack: its packages and console scripts (`pip install -e .[test]`)."""

from setuptools import find_packages, setup

setup(
    name="ringstack",
    version="0.1.0",
    description="Swift-style object and block storage with compute attached",
    python_requires=">=3.11",
    packages=find_packages(include=["ring", "ring.*", "common", "common.*", "proxy", "proxy.*",
                                    "storage_node", "storage_node.*", "block", "block.*",
                                    "compute", "compute.*", "identity", "identity.*"]),
    install_requires=[
        "numpy>=1.26,<3",
        "scipy>=1.11,<2",          # max-flow (scipy.sparse.csgraph) for ring placement
        "msgpack>=1.0,<2",
        "eventlet>=0.36,<1",
        "webob>=1.8,<2",
        "xattr>=1.0,<2",
        "pyeclib>=1.6,<2",
        "cryptography>=41",        # Fernet tokens (identity), nothing hand-rolled
    ],
    extras_require={
        "test": ["pytest>=8,<10", "hypothesis>=6.100,<7", "pytest-timeout>=2.3,<3",
                 "python-swiftclient>=4.4,<5",
                 "python-openstackclient>=6", "boto3>=1.34", "awscli>=1.32",
                 "ruff>=0.5"],
    },
    entry_points={
        "console_scripts": [
            "ringstack-ring-builder=ring.cli:main",
            "ringstack-aio=common.aio:main",
            "ringstack-server=common.server_main:main",
            "ringstack-recon=storage_node.recon_cli:main",
            "ringstack-identity=identity.cli:main",
        ],
    },
)
