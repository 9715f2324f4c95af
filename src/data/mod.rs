//! What an image goes through before the model. Plain `u8` buffers, no libtorch.
pub mod augment;
pub mod cifar;
pub mod download;
pub mod loader;
pub mod mt19937;
pub mod pack;
pub mod rng;
pub mod subset;
pub mod validation;
