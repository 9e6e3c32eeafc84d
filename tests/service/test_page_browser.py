"""The web page end to end in headless Chromium (Debian's, installed by scripts/browser.sh): upload a
real image, wait for the comparison, check the numbers shown against the API's, save a screenshot."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from nicodec import compress, decompress
from nicodec.eval.compare import panels
from nicodec.models.pretrained import manifest
from tests.conftest import REPO, kodak_crop

ARTIFACTS = REPO / "tests" / "artifacts"  # gitignored: CI keeps what the tests saw
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), shutil.which("chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver: bash scripts/browser.sh")


@pytest.fixture(scope="module")
def server() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "nicodec", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))  # no driver download
    yield driver
    driver.quit()


def test_page_compares_at_the_same_size(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    image = kodak_crop(23, (256, 128, 512, 320))  # 256x192 of the parrots
    upload = tmp_path / "parrots.png"
    image.save(upload)
    browser.get(server)
    menu = browser.find_element(By.ID, "model")  # the shipped models, the default chosen
    shipped = manifest()
    WebDriverWait(browser, 30).until(lambda _: menu.find_elements(By.TAG_NAME, "option"))
    assert [o.text for o in menu.find_elements(By.TAG_NAME, "option")] == sorted(shipped["models"])
    assert menu.get_attribute("value") == shipped["default"]
    browser.find_element(By.ID, "file").send_keys(str(upload))
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 300).until(lambda _: status.get_attribute("data-state") in ("done", "error"))
    assert status.get_attribute("data-state") == "done", status.text

    shown = {f.get_attribute("data-codec"): f for f in browser.find_elements(By.CSS_SELECTOR, "figure")}
    assert list(shown) == ["original", "nicodec", "JPEG 4:2:0", "WebP", "AVIF"]
    rgb = np.asarray(image)
    data = compress(image, 75, metadata=False)  # the slider's default
    expected = {p.codec: p for p in panels(rgb, 75, data=data)}
    for codec, figure in list(shown.items())[1:]:
        size = int(figure.find_element(By.CLASS_NAME, "bytes").text)
        psnr = float(figure.find_element(By.CLASS_NAME, "psnr").text)
        assert size == expected[codec].size and psnr == pytest.approx(expected[codec].psnr, abs=0.005)
        assert size <= len(data)
    assert expected["nicodec"].psnr == pytest.approx(
        10 * np.log10(255**2 / np.mean((rgb - np.asarray(decompress(data), dtype=np.float64)) ** 2)))

    nic_link = browser.find_element(By.ID, "download-nic")
    assert nic_link.get_attribute("download") == "parrots.nic"
    assert browser.find_element(By.ID, "download-png").get_attribute("download") == "parrots.decoded.png"
    browser.find_element(By.ID, "zoom").click()  # 1:1: each image at its own pixel size
    img = shown["AVIF"].find_element(By.TAG_NAME, "img")
    assert browser.execute_script("return [arguments[0].width, arguments[0].height]", img) == [256, 192]

    target = len(data) // 2  # the target-size field: rate control instead of the slider
    browser.find_element(By.ID, "size").send_keys(f"{target}\n")

    def nicodec_bytes(_) -> int | None:
        if status.get_attribute("data-state") != "done":
            return None
        return int(browser.find_element(By.CSS_SELECTOR, "figure[data-codec=nicodec] .bytes").text)

    WebDriverWait(browser, 300).until(lambda d: (nicodec_bytes(d) or len(data)) < len(data))
    assert nicodec_bytes(browser) == len(compress(image, max_bytes=target, metadata=False))

    Select(menu).select_by_value("fast")  # another model: the page asks again at once
    fast = len(compress(image, max_bytes=target, model="fast", metadata=False))
    WebDriverWait(browser, 300).until(lambda d: nicodec_bytes(d) == fast)
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "page_compare.png"))
