# GstFER developer entry points. `make help` lists them.
SWIFT ?= swift
DATA ?= ../shared/data/fer2013/fer2013.csv.gz
FERPLUS ?= $(dir $(DATA))fer2013new.csv
MODEL ?= Models/fernet.json
FER = .build/release/fer
APT_PACKAGES = pkg-config libopenblas-dev zlib1g-dev libturbojpeg0-dev libmosquitto-dev mosquitto mosquitto-clients libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev \
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav opencv-data chromium openssl curl

.PHONY: help setup print-apt-packages build plugin test demo serve fuzz asan tsan bench soak explore eval train card fixtures clean

help:
	@echo "make setup    install the Debian packages GstFER needs (apt-get; run as root)"
	@echo "make demo     set up, build and install the plugin, and annotate a face video with ferfilter (out/annotated.mp4)"
	@echo "make test     set up and run every test (swift test)"
	@echo "make serve    the web viewer on http://127.0.0.1:8080/ (webcam, else a FER2013 clip; SOURCE=file/URL, PORT=...)"
	@echo "make bench    FERNet beside PyTorch, ferfilter beside facedetect (fps, latency, memory), a 10-minute soak"
	@echo "make soak     ferfilter for 100,000 frames (as fast as it goes), resident memory every 30 s, objects left alive"
	@echo "make asan     the element, detector, tracker and viewer tests under AddressSanitizer (make tsan: ThreadSanitizer)"
	@echo "make fuzz     mutate model, weights, cascade, CSV and image inputs for FUZZ_SECONDS each, under AddressSanitizer"
	@echo "make explore  sample grid and class-distribution charts of the data"
	@echo "make eval     evaluate the shipped model on PublicTest"
	@echo "make train    retrain the shipped model with the commands recorded in its model card (RUN=runs/vgg48; again: continues)"
	@echo "make card     rewrite Models/README.md from the shipped model's JSON"

setup:
	@missing=""; for p in $(APT_PACKAGES) $(EXTRA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

print-apt-packages:
	@echo $(APT_PACKAGES)

build: setup
	$(SWIFT) build -c release --product fer

plugin: setup
	plugin/meson-free-build.sh

# Tests run optimised (the detector and the CNN are 10-50x slower in debug builds).
TEST_FLAGS = -c release -Xswiftc -enable-testing
test: setup
	plugin/meson-free-build.sh --dest .build/gst-plugins
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	$(SWIFT) test $(TEST_FLAGS) --skip-build

demo: build plugin
	examples/demo.sh

# The web viewer: the webcam if there is one, else a clip of FER2013 faces.
SOURCE ?= $(if $(wildcard /dev/video0),/dev/video0,test)
PORT ?= 8080
serve: build plugin
	$(FER) serve --source "$(SOURCE)" --port $(PORT) --data $(DATA)

# Seeded mutation fuzzing of every reader, in a build with AddressSanitizer (its own build folder).
FUZZ_SECONDS ?= 60
fuzz: setup
	$(SWIFT) build -c release --product fer --scratch-path .build-asan -Xswiftc -sanitize=address
	mkdir -p /dev/shm/gstfer-fuzz 2>/dev/null && dir=/dev/shm/gstfer-fuzz || dir=out/fuzz; \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp .build-asan/release/fer fuzz --seconds $(FUZZ_SECONDS) --output $$dir

# The element, detector, tracker and viewer tests under a sanitizer, each in a build folder of its own.
SAN_TESTS ?= GstFERTests|FaceAnalysisTests|FaceDetectTests|FaceTrackingTests|WebViewerTests|ParallelismTests|MQTTPublishTests
asan: setup
	plugin/meson-free-build.sh --dest .build/gst-plugins
	$(SWIFT) build $(TEST_FLAGS) --build-tests --scratch-path .build-asan -Xswiftc -sanitize=address -Xcc -fsanitize=address
	LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp $(SWIFT) test $(TEST_FLAGS) --skip-build --scratch-path .build-asan --filter '$(SAN_TESTS)'
tsan: setup
	plugin/meson-free-build.sh --dest .build/gst-plugins
	$(SWIFT) build $(TEST_FLAGS) --build-tests --scratch-path .build-tsan -Xswiftc -sanitize=thread -Xcc -fsanitize=thread
	TSAN_OPTIONS="suppressions=$(CURDIR)/tools/tsan.supp halt_on_error=0" $(SWIFT) test $(TEST_FLAGS) --skip-build --scratch-path .build-tsan --filter '$(SAN_TESTS)'

# facedetect (gst-plugins-bad's OpenCV element) is only the benchmark's yardstick: setup installs
# it when it runs for bench.
bench: EXTRA_PACKAGES = gstreamer1.0-opencv
bench: build plugin
	$(FER) bench
	tools/bench-detector.sh
	tools/compare-facedetect.sh 150
	tools/bench-element.sh 120 640x480 1280x720 1920x1080 1920x1080@60
	tools/bench-streams.sh 300 1280x720 1 2 4 6
	tools/bench-publish.sh 600 3
	tools/soak.sh 18000

soak: build plugin
	SYNC=false tools/soak.sh 100000

explore: build
	$(FER) explore $(DATA) --output out/explore

eval: build
	$(FER) eval $(DATA) --model $(MODEL) --usage PublicTest --flip-tta

# The shipped model's history (Models/README.md records it): a 40-epoch cosine run of the vgg48
# architecture, then a second 12-epoch cosine cycle at half the peak learning rate started from
# its best weights (both were stopped and resumed; a resumed run ends where an uninterrupted one
# would), the second run's best epoch's batch-norm statistics recomputed on plain Training faces
# and the weights saved as int8; then its PublicTest accuracy. About five and a half hours on 2
# cores, in RUN, RUN-ft and RUN-ft-bn. Interrupted, `make train` again continues each run from its
# checkpoint (a finished run is left as it is).
RUN ?= runs/vgg48
train_step = if [ -f $(1)/checkpoint.json ]; then $(FER) train $(DATA) --resume --output $(1); \
	else $(FER) train $(DATA) $(2) --output $(1); fi
train: build
	$(call train_step,$(RUN),--arch vgg48 --epochs 40 --lr 2e-3 --seed 1)
	$(call train_step,$(RUN)-ft,--arch vgg48 --init-from $(RUN)/fernet.json --epochs 12 --lr 1e-3 --seed 2)
	$(FER) recompute-stats $(RUN)-ft/fernet.json $(DATA) --weights int8 --output $(RUN)-ft-bn
	$(FER) eval $(DATA) --model $(RUN)-ft-bn/fernet.json --usage PublicTest
	$(FER) eval $(DATA) --model $(RUN)-ft-bn/fernet.json --usage PublicTest --flip-tta

card: build
	$(FER) card $(MODEL) > Models/README.md

fixtures:
	python3 tools/make_fixtures.py

clean:
	rm -rf .build out runs
