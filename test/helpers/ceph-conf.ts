/**
 * ceph.conf for the tests' single-node cluster (test/helpers/ceph-s3.ts): one monitor on msgr v1,
 * one OSD on memstore, radosgw clients; cephx off, loopback only, pools of size 1.
 */
export function cephConf(p: { dir: string; fsid: string; monPort: number; osdPorts: [number, number]; memstoreBytes: number }): string {
  return `[global]
fsid = ${p.fsid}
mon host = v1:127.0.0.1:${p.monPort}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
# msgr v1 only, IPv4 loopback only, and OSD ports inside the block this launcher found free
ms bind msgr2 = false
ms bind ipv6 = false
ms bind port min = ${p.osdPorts[0]}
ms bind port max = ${p.osdPorts[1]}
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
run dir = ${p.dir}/run
log file = ${p.dir}/log/$name.log
admin socket = ${p.dir}/run/$name.asok
[mon.a]
mon data = ${p.dir}/mon
[osd]
osd data = ${p.dir}/osd
osd objectstore = memstore
memstore device bytes = ${p.memstoreBytes}
[client.rgw.a]
rgw data = ${p.dir}/rgw
# deleted objects are freed within a minute, not after the default two hours
rgw gc obj min wait = 30
rgw gc processor period = 30
`;
}
