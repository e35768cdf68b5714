"""Packaging for flocker-zfs: a Twisted ZFS dataset backend with peer-to-peer replication."""

from setuptools import find_packages, setup

setup(
    name="flocker-zfs",
    version="0.1.0.dev0",
    description="Twisted peer-to-peer ZFS dataset backend for dataset agents",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(),
    package_data={"flocker_zfs.test": ["recordings/*/*.json", "recordings/*.md", "data/*.txt"]},
    install_requires=[
        "twisted>=22.10",
        "pyrsistent>=0.19",
        "zope.interface>=5",
        "pyyaml>=6",
        "eliot>=1.14",
    ],
    extras_require={
        "test": ["hypothesis>=6", "flake8>=6", "eliot-tree>=21"],
        "docs": ["sphinx>=5"],
    },
    entry_points={
        "console_scripts": ["flocker-zfs = flocker_zfs._cli:main"],
        "flocker.backends": ["zfs = flocker_zfs._plugin:FLOCKER_BACKEND"],
    },
    classifiers=[
        "Framework :: Twisted",
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
    ],
)
