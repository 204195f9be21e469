//! Rebuilds the crate when a migration is added or changed. `sqlx::migrate!` embeds the files
//! it finds while the crate compiles, and cargo would not otherwise notice a new file in
//! `migrations/`: a migration added without a change to the code would be left out of the
//! next build, and its tests would run against the old schema.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
