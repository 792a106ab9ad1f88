"""Startup refusals: a non-lucene k-NN engine, and no usable JDK (with what was searched)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.settings import Settings
from stack.errors import StackError
from stack.jdk import find_jdk


@pytest.mark.parametrize("engine", ["faiss", "nmslib", "Lucene"])
def test_non_lucene_engine_is_refused(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="kills the OpenSearch node"):
        Settings(knn_engine=engine)
    monkeypatch.setenv("LOCKSTEP_KNN_ENGINE", engine)
    with pytest.raises(ValidationError, match="knn_engine"):
        Settings()


def _fake_jdk(root: Path, name: str, release: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\nexit 1\n")
    (home / "release").write_text(release)
    return home


def test_jdk_finder_names_what_it_searched_and_why_each_was_rejected(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    _fake_jdk(jvm, "java-17", 'JAVA_VERSION="17.0.9"\nMODULES="java.base jdk.incubator.vector"\n')
    _fake_jdk(jvm, "jdk-21-jre", 'JAVA_VERSION="21.0.2"\nMODULES="java.base java.logging"\n')
    (jvm / "not-a-jdk").mkdir()
    with pytest.raises(StackError) as error:
        find_jdk(roots=(jvm,), java_home=str(tmp_path / "nowhere"))
    message = str(error.value)
    assert "JDK >= 21" in message and "jdk.incubator.vector" in message
    assert f"{jvm}/*" in message and f"JAVA_HOME={tmp_path / 'nowhere'}" in message
    assert f"{jvm / 'java-17'}: version 17 < 21" in message
    assert f"{jvm / 'jdk-21-jre'}: version 21 but no jdk.incubator.vector module" in message
    assert f"{jvm / 'not-a-jdk'}: no bin/java" in message


def test_jdk_finder_prefers_the_newest_usable_and_honours_java_home(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    modules = 'MODULES="java.base jdk.incubator.vector"\n'
    _fake_jdk(jvm, "jdk-21", 'JAVA_VERSION="21.0.2"\n' + modules)
    _fake_jdk(jvm, "jdk-24", 'JAVA_VERSION="24"\n' + modules)
    own = _fake_jdk(tmp_path / "opt", "jdk-22", 'JAVA_VERSION="22.0.1"\n' + modules)
    assert find_jdk(roots=(jvm,), java_home="").major == 24
    assert find_jdk(roots=(tmp_path / "none",), java_home=str(own)).home == own.resolve()


def test_the_machine_has_a_jdk_opensearch_can_use() -> None:
    jdk = find_jdk()
    assert jdk.major >= 21
    assert (jdk.home / "bin" / "java").is_file()
