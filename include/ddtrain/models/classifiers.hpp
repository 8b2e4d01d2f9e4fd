#pragma once
// Image classifiers (the FFNN and the CNN of the classification experiments) and batch
// normalization whose statistics are synchronized over a communicator.
//
// Parameter decomposition works on layers: every convolution or linear map, together with the
// batch normalization that follows it, is one registered child module ("conv0", "fc1", ...), so
// the default FlatParameters layer mapping (top_level_layer) gives one layer per block.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "ddtrain/comm/communicator.hpp"

namespace ddtrain {

/// Sum over the ranks of `comm` that autograd can differentiate: the value is the allreduced
/// sum, identical on every rank, and the gradient reaching `local` is the allreduced sum of the
/// upstream gradients (d(sum_r t_r)/dt_q = I for the output of every rank r). Backward is a
/// collective: every rank must run it. A null or size-1 communicator returns `local`.
torch::Tensor differentiable_allreduce_sum(const torch::Tensor& local, const CommunicatorPtr& comm);

struct SyncBatchNormOptions {
  int64_t features = 1;   ///< channels C of the (N, C, ...) input
  double eps = 1e-5;      ///< added to the variance, as torch::nn::BatchNorm
  double momentum = 0.1;  ///< running = (1 - momentum) running + momentum batch, as torch
};

/// Batch normalization over the union of the batches held by the ranks of a communicator.
///
/// Training mode: each rank computes per-channel sum and sum of squares of its input, ONE
/// allreduce of [sum, sum of squares, count] gives the global mean and (biased) variance, and
/// the input is normalized with them: identical (up to rounding) to torch::nn::BatchNorm on
/// the concatenated batch in one process. The allreduce is differentiable (see
/// differentiable_allreduce_sum), so backward is exact for the SUM of the losses of all ranks
/// and is a collective too. The affine parameters get this rank's contribution to the gradient;
/// summing the parameter gradients over the ranks (what DistributedObjective does) gives the
/// gradient of the whole batch. The running statistics (unbiased variance, as torch) are updated
/// from the global statistics, so they are identical on every rank. Without a communicator (or
/// with one of size 1) this is torch::batch_norm.
/// Evaluation mode: the running statistics, no communication.
class SyncBatchNormImpl : public torch::nn::Module {
 public:
  explicit SyncBatchNormImpl(SyncBatchNormOptions options, CommunicatorPtr comm = nullptr);
  /// x: (N, C) or (N, C, H, W, ...). Throws InvalidArgument on a channel mismatch, or in training
  /// mode when the (global) batch has a single value per channel.
  torch::Tensor forward(const torch::Tensor& x);
  void set_communicator(CommunicatorPtr comm) { comm_ = std::move(comm); }
  /// Training forwards update the running statistics (default true). Off, a forward uses the
  /// batch's statistics and leaves the running ones as they are (local, throw-away evaluations).
  void set_update_running_stats(bool on) { update_running_stats_ = on; }
  const SyncBatchNormOptions& options() const { return options_; }

  torch::Tensor weight, bias;               ///< affine parameters (ones, zeros)
  torch::Tensor running_mean, running_var;  ///< buffers (zeros, ones)

 private:
  torch::Tensor synchronized_forward(const torch::Tensor& x);
  SyncBatchNormOptions options_;
  CommunicatorPtr comm_;
  bool update_running_stats_ = true;
};
TORCH_MODULE(SyncBatchNorm);

/// One layer of a classifier: a linear map or a 2-D convolution, then the optional batch norm
/// (when present the affine map has no bias: the normalization would remove it).
class LayerBlockImpl : public torch::nn::Module {
 public:
  /// A linear block in -> out.
  LayerBlockImpl(int64_t in, int64_t out, bool batch_norm, CommunicatorPtr comm);
  /// A convolution block in -> out channels, kernel x kernel, stride 1, no padding.
  LayerBlockImpl(int64_t in, int64_t out, int64_t kernel, bool batch_norm, CommunicatorPtr comm);
  torch::Tensor forward(const torch::Tensor& x);
  /// The block's batch norm (empty holder when off).
  SyncBatchNorm& norm() { return norm_; }

 private:
  torch::nn::Linear linear_{nullptr};
  torch::nn::Conv2d conv_{nullptr};
  SyncBatchNorm norm_{nullptr};
};
TORCH_MODULE(LayerBlock);

struct ClassifierOptions {
  std::string model = "ffnn";  ///< "ffnn" or "cnn"
  int64_t channels = 1;        ///< input image shape C x H x W (Fashion-MNIST: 1 x 28 x 28)
  int64_t height = 28;
  int64_t width = 28;
  int64_t classes = 10;
  /// FFNN: the one hidden layer's width. CNN: the width of both hidden fully connected layers.
  int64_t hidden = 128;
  /// CNN only: output channels of the two 5x5 convolutions (kept small so that an epoch of
  /// Fashion-MNIST takes well under a minute on 2 CPU cores).
  int64_t conv_channels0 = 16;
  int64_t conv_channels1 = 32;
  int64_t kernel = 5;
  bool batch_norm = false;  ///< batch norm after every layer but the last
  CommunicatorPtr comm;     ///< synchronizes the batch norm statistics; null = none (serial)
  std::string validate() const;  ///< "" or a one-line message naming the field
};

/// Accepted values of ClassifierOptions::model, for messages: "ffnn, cnn".
const char* classifier_models();

/// A classifier: images (N, C, H, W) -> logits (N, classes). Activations are ReLU.
///   ffnn: fc0 (C*H*W -> hidden), relu, fc1 (hidden -> classes).                  2 layers
///   cnn:  conv0 (C -> c0, 5x5), relu, max-pool 2x2, conv1 (c0 -> c1, 5x5), relu,
///         fc0 (c1*h*w -> hidden), relu, fc1 (hidden -> hidden), relu, fc2 (-> classes).
///                                                                                 5 layers
///         (28x28 input: 24x24, pooled 12x12, then 8x8; 32x32: 28, 14, 10; needs H, W >= 14.)
/// With batch_norm, every block but the last normalizes before its ReLU.
class Classifier : public torch::nn::Module {
 public:
  explicit Classifier(ClassifierOptions options);
  torch::Tensor forward(torch::Tensor x);
  const ClassifierOptions& options() const { return options_; }
  /// The blocks in forward order; their registered names are the layer names.
  const std::vector<LayerBlock>& blocks() const { return blocks_; }
  /// Changes the communicator of every batch norm (e.g. after re-arranging the ranks).
  void set_communicator(CommunicatorPtr comm);
  /// Whether training forwards of every batch norm update its running statistics.
  void set_update_running_stats(bool on);

 private:
  void add_block(const std::string& name, LayerBlock block);
  ClassifierOptions options_;
  std::vector<LayerBlock> blocks_;
};

}  // namespace ddtrain
