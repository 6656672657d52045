//! Ceph administration through librados `mon_command`: pools, CRUSH rules, EC profiles,
//! cephx users. Desired state is built purely; apply reads before it writes.
