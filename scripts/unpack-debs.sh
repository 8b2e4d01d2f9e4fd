#!/usr/bin/env bash
# For a machine without network that lacks some packages (the GPU machine lacked Boost.Program_options
# and matio): unpack .deb files carried there (fetched elsewhere with `apt-get download`) that
# are not installed into a prefix, and print the environment that makes gpu-check.sh use them:
#   scripts/unpack-debs.sh DEB_DIR [PREFIX] > deps.env && source deps.env && scripts/gpu-check.sh
# Runtime libraries are exposed (LD_LIBRARY_PATH) only where the system lacks the soname.
set -e
DEBS=${1:?usage: scripts/unpack-debs.sh DEB_DIR [PREFIX]}; D=${2:-/opt/deps}
if [ -e "$D" ] && [ ! -e "$D/.unpack-debs" ]; then
  echo "unpack-debs: $D exists and was not made by this script; give another PREFIX" >&2; exit 1
fi
rm -rf "$D"; mkdir -p "$D/lib"; touch "$D/.unpack-debs"
for deb in "$DEBS"/*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  dpkg-query -W -f="\${Status}" "$pkg" 2>/dev/null | grep -q "install ok installed" && continue
  dpkg-deb -x "$deb" "$D"
done
# runtime libraries: expose only the sonames the system does not already have
for f in "$D"/usr/lib/x86_64-linux-gnu/*.so.* "$D"/lib/x86_64-linux-gnu/*.so.*; do
  [ -e "$f" ] || continue
  so=$(basename "$f")
  ldconfig -p | awk '{print $1}' | grep -qxF "$so" || ln -sf "$f" "$D/lib/$so"
done
# the .pc files name /usr: point them at $D (no PKG_CONFIG_SYSROOT_DIR: it would leak into the
# install test's own pkg-config call)
for pc in "$D"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc; do
  if [ -e "$pc" ]; then sed -i "s|/usr|$D/usr|g" "$pc"; fi
done
# Debian's matio.pc links -lhdf5 from hdf5/serial/{lib,include}, which only libhdf5-dev provides.
if [ -e "$D/usr/lib/x86_64-linux-gnu/libhdf5_serial.so.103" ]; then
  serial="$D/usr/lib/x86_64-linux-gnu/hdf5/serial"
  mkdir -p "$serial/lib" "$serial/include"
  ln -sf ../../../libhdf5_serial.so.103 "$serial/lib/libhdf5.so"
fi
echo "deps: exposed $(ls "$D/lib" | wc -l) runtime libraries: $(ls "$D/lib" | tr '\n' ' ')" >&2
cat <<ENV
export LD_LIBRARY_PATH=$D/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$D/usr/lib/x86_64-linux-gnu/pkgconfig
export EXTRA_CMAKE_PREFIX_PATH=$D/usr
export SKIP_APT=1
ENV
