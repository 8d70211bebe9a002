"""The browser demo in a real headless Chromium: MediaPipe Tasks Vision (WebAssembly) against LiteRT.

//demo:serve serves a model and a photo on 127.0.0.1; Debian's chromium,
driven by Selenium through Debian's chromedriver, loads the page, which runs
the model with `@mediapipe/tasks-vision` and writes its detections as JSON
into the DOM. They must be LiteRT's (`detect`)
for the same model and photo: same labels, scores within SCORE_TOLERANCE,
and boxes equal to MediaPipe's integer pixels of LiteRT's box (origin
clamped at 0, size unclipped, both truncated, as MediaPipe Python gives
them). The photo is given at the model's input size, so that the browser's
resize (WebGL) and Pillow's do not differ. Chromium's net log must show that
every request the page made went to 127.0.0.1; resolving any other host is
also switched off. A screenshot of each page is saved in the test outputs.
"""

import json
import os
import re
import shutil
import subprocess

import numpy as np
from absl.testing import absltest, parameterized
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import testing
from ssd_tflite import detection
from ssd_tflite.images import load_image

TARGETS = ("ssd_mobilenet_v1_quant_tflite", "ssdlite_mobilenet_v2_tflite")
PHOTOS = ("chelsea.png", "coffee.png")
# Measured: equal scores for the uint8 model; the float model's differ by up to 1.2e-7, one float32
# ulp (WebAssembly's float kernels against XNNPACK's). Allowed: a few ulps, far below any score step.
SCORE_TOLERANCE = 1e-6
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Root needs --no-sandbox; MediaPipe needs WebGL, which headless SwiftShader gives.
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--enable-unsafe-swiftshader",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--window-size=800,1000",
]
PAGE_TIMEOUT = 120  # seconds for the page to load MediaPipe and detect (measured: 1-3 s)


def page_requests(net_log: str, origin: str) -> list[str]:
    """URLs of the requests made on behalf of the page (its origin is their isolation key or initiator)."""
    with open(net_log) as log_file:
        text = log_file.read()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # Chromium may be stopped before it closes the event list
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [event.get("params", {}) for event in log["events"] if event["type"] == start_job]
    return [params["url"] for params in starts
            if origin in params.get("network_isolation_key", "") or params.get("initiator", "").startswith(origin)]


class BrowserDemoTest(parameterized.TestCase):

    def setUp(self):
        super().setUp()
        if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
            self.fail("this test needs Debian's chromium and chromium-driver: "
                      "apt-get install chromium chromium-driver (.ci/run installs them)")
        self.tmp = self.create_tempdir().full_path

    def serve(self, model: str, image: str) -> str:
        # As `bazel run //demo:serve` would, with its args.
        constants = testing.starlark_constants()
        bundle = os.path.join(os.environ["TEST_SRCDIR"], constants["MEDIAPIPE_TASKS_VISION_REPOSITORY"],
                              constants["MEDIAPIPE_BUNDLE"])
        server = subprocess.Popen([testing.runfile("demo/serve"), f"--mediapipe_bundle={bundle}", f"--model={model}",
                                   f"--image={image}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(server.stdout.close)
        self.addCleanup(server.wait, 10)
        self.addCleanup(server.terminate)
        address = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline())
        self.assertIsNotNone(address, "serve printed no address")
        return address.group(0)

    def browser(self, *flags: str) -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={self.create_tempdir().full_path}", *flags]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        self.addCleanup(lambda: driver.session_id and driver.quit())
        return driver

    @staticmethod
    def page_json(driver: webdriver.Chrome, element: str) -> list:
        """The JSON the page writes into `element`, once it is there."""
        text = WebDriverWait(driver, PAGE_TIMEOUT).until(lambda page: page.find_element(By.ID, element).text.strip())
        return json.loads(text)

    @parameterized.product(target=TARGETS, photo=PHOTOS)
    def test_page_finds_what_litert_finds_and_fetches_only_from_127_0_0_1(self, target, photo):
        model = testing.runfile(f"models/{target}.tflite")
        litert = detection.open_detector(model)
        picture = load_image(testing.testdata(photo)).resize((litert.width, litert.height),
                                                                        detection.Image.BILINEAR)
        image = os.path.join(self.tmp, "photo.png")
        picture.save(image)
        address = self.serve(model, image)
        net_log = os.path.join(self.tmp, "net_log.json")
        driver = self.browser(f"--log-net-log={net_log}")
        driver.get(address + "?threshold=0")
        found = self.page_json(driver, "detections")
        fetched = self.page_json(driver, "requests")
        driver.quit()  # writes the end of the net log
        driver.session_id = None

        boxes, classes, scores, count = litert.raw_outputs(litert.input_tensor(picture))
        self.assertLen(found, int(count[0]))
        size = np.array([litert.height, litert.width, litert.height, litert.width], np.float32)
        for index, page in enumerate(found):
            ymin, xmin, ymax, xmax = boxes[0, index] * size
            self.assertEqual(page["label"], litert.labels[int(classes[0, index])], index)
            self.assertAlmostEqual(page["score"], float(scores[0, index]), delta=SCORE_TOLERANCE, msg=index)
            for name, real in (("x", max(xmin, 0.0)), ("y", max(ymin, 0.0)), ("width", xmax - xmin),
                               ("height", ymax - ymin)):
                self.assertTrue(0 <= real - page["box"][name] < 1, f"{index} {name}: {page['box']} vs {real:.2f}")

        requests = page_requests(net_log, address.rstrip("/"))
        self.assertIn(address + "model.tflite", requests)
        self.assertEqual([url for url in requests if not url.startswith(address)], [])
        self.assertEqual([url for url in fetched if not url.startswith(address)], [])

    def test_screenshot_shows_boxes_on_the_photo(self):
        model = testing.runfile("models/ssd_mobilenet_v1_quant_tflite.tflite")
        address = self.serve(model, testing.testdata("chelsea.png"))
        driver = self.browser()
        driver.get(address + "?threshold=0.6")
        self.assertNotEmpty(self.page_json(driver, "detections"))
        screenshot = os.path.join(os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", self.tmp), "demo.png")
        self.assertTrue(driver.save_screenshot(screenshot))
        # Boxes are drawn in #e0218a: the overlay must hold some of its pixels.
        overlay = driver.execute_script(
            "const c = document.getElementById('overlay'); const d = c.getContext('2d').getImageData(0, 0, c.width,"
            " c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] === 224 && d[i + 1] === 33"
            " && d[i + 2] === 138) n++; return n;")
        self.assertGreater(overlay, 100)


if __name__ == "__main__":
    absltest.main()
