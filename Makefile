# appdep top-level build.  Everything lands in build/ (git-ignored).
#
#   make          build everything: patched QEMU, tools, guest lab
#   make check    run every test (unit, qtest, profile, boot under TCG)
#   make demo     boot a small lab, trace it, print what appdep saw
#   make bench    the hook-cost benchmark (figures, not a test): function
#                 hooks and the syscall layer under TCG; bench-kvm: the same
#                 under KVM, where a KVM guest can run
#   make bench-server  ingest and query figures of the APM server
#   make accuracy  trajectory accuracy per server model (docs/accuracy.md)

BUILD   := build
MESON   := $(BUILD)/meson
QEMU    := $(BUILD)/qemu-build/qemu-system-x86_64
PY      := /usr/bin/python3

.PHONY: all deps qemu tools lab check check-unit check-qtest check-profile \
        check-boot demo bench bench-kvm bench-server accuracy clean distclean

all: qemu tools lab

deps:
	@scripts/install-deps.sh

qemu: deps
	@scripts/qemu.sh build

$(MESON)/build.ninja: meson.build | deps
	meson setup --reconfigure $(MESON) . >/dev/null 2>&1 || meson setup $(MESON) .

tools: deps $(MESON)/build.ninja
	@ninja -C $(MESON) >/dev/null || ninja -C $(MESON)

lab: deps tools
	@scripts/lab/fetch-kernels.sh build/kernels
	@scripts/lab/mkinitramfs.sh
	@scripts/lab/mkprofile.sh

check: all
	@$(PY) scripts/run-checks.py

check-unit: tools
	meson test -C $(MESON) --print-errorlogs

check-qtest: qemu
	scripts/qemu.sh qtest

demo: all
	@$(PY) scripts/demo.py

bench: all
	@$(PY) scripts/bench.py --mechanisms

bench-kvm: all
	@$(PY) scripts/bench.py --mechanisms --accel kvm

accuracy: all
	@$(PY) scripts/accuracy.py

bench-server: tools
	@$(MESON)/server/appdep-bench-ingest
	@$(MESON)/server/appdep-bench-store --queries

clean:
	rm -rf $(MESON) $(BUILD)/lab $(BUILD)/guest

distclean:
	rm -rf $(BUILD)
