#include "common/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "common/progress.hpp"
#include "common/svg.hpp"

namespace xgrad::examples {

std::size_t count_correct(const Tensor& logits, const Tensor& labels) {
    const Tensor predicted_classes = argmax(logits);
    const auto& predicted = predicted_classes.values<std::int64_t>();
    const auto& expected = labels.values<std::int64_t>();
    std::size_t correct = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        correct += predicted(i) == expected(i) ? 1 : 0;
    }
    return correct;
}

Evaluation evaluate(nn::Module& model, const data::TensorDataset& dataset) {
    NoGradGuard no_grad;
    model.eval();
    data::DataLoader loader(dataset, {.batch_size = 1000, .shuffle = false});
    double loss_sum = 0.0;
    std::size_t correct = 0;
    for (const data::Batch& batch : loader) {
        const Tensor logits = model(batch.inputs);
        loss_sum += cross_entropy(logits, batch.targets, Reduction::sum).item();
        correct += count_correct(logits, batch.targets);
    }
    model.train();
    if (dataset.size() == 0) {
        return {std::nan(""), std::nan("")};  // nothing to measure, not a perfect score
    }
    const auto n = static_cast<double>(dataset.size());
    return {loss_sum / n, static_cast<double>(correct) / n};
}

Graph inference_graph(nn::Module& model, const Tensor& inputs) {
    NoGradGuard no_grad;
    model.eval();
    Graph graph = capture(model, inputs);
    model.train();
    return graph;
}

double inference_ms(Graph& graph, const Tensor& inputs) {
    std::vector<double> times;
    for (int round = 0; round < 50; ++round) {
        const auto start = std::chrono::steady_clock::now();
        graph.forward({inputs});
        const auto stop = std::chrono::steady_clock::now();
        times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

EpochMetrics run_epoch(const std::string& stage, int epoch, int epochs, data::DataLoader& loader,
                       const TrainStep& train_step, nn::Module& model,
                       const data::TensorDataset& held_out, double lr) {
    Progress progress(stage + " epoch " + std::to_string(epoch) + "/" + std::to_string(epochs),
                      loader.size());
    double loss_sum = 0.0;
    std::size_t correct = 0;
    std::size_t seen = 0;
    std::size_t step = 0;
    for (const data::Batch& batch : loader) {
        const auto [loss, logits] = train_step(batch);
        const std::size_t n = batch.targets.numel();
        loss_sum += loss.item() * static_cast<double>(n);
        correct += count_correct(logits, batch.targets);
        seen += n;
        char status[64];
        std::snprintf(status, sizeof status, "loss %.4f", loss_sum / static_cast<double>(seen));
        progress.update(++step, seen, status);
    }
    const Evaluation validation_result = evaluate(model, held_out);
    const double mean_loss = loss_sum / static_cast<double>(std::max<std::size_t>(seen, 1));
    char status[128];
    std::snprintf(status, sizeof status, "loss %.4f  validation accuracy %.4f", mean_loss,
                  validation_result.accuracy);
    progress.finish(status);
    return {stage,
            epoch,
            mean_loss,
            static_cast<double>(correct) / static_cast<double>(std::max<std::size_t>(seen, 1)),
            validation_result.loss,
            validation_result.accuracy,
            lr,
            progress.elapsed_seconds()};
}

Graph training_graph(nn::Module& model, const data::TensorDataset& train, std::size_t batch_size) {
    data::DataLoader loader(train, {.batch_size = batch_size, .shuffle = false});
    const data::Batch example = *loader.begin();
    return capture(
        [&](const std::vector<Tensor>& in) {
            const Tensor logits = model(in[0]);
            return std::vector<Tensor>{cross_entropy(logits, in[1]), logits};
        },
        {example.inputs, example.targets}, &model);
}

TrainStep graph_step(Graph& graph, optim::Optimizer& optimizer,
                     std::function<void()> after_backward) {
    return [&graph, &optimizer, after_backward](const data::Batch& batch) {
        const std::vector<Tensor>& outputs = graph.forward({batch.inputs, batch.targets});
        optimizer.zero_grad();
        graph.backward();
        if (after_backward) {
            after_backward();
        }
        optimizer.step();
        return std::pair{outputs[0], outputs[1]};
    };
}

transforms::PruningSchedule pruning_schedule(double sparsity, std::int64_t total_steps) {
    return {.initial_sparsity = 0.0,
            .final_sparsity = sparsity,
            .begin_step = 0,
            .end_step = std::max<std::int64_t>(total_steps * 2 / 3, 1),
            .frequency = 50};
}

void fine_tune_while_pruning(transforms::GradualPruner& pruner,
                             const transforms::PruningSchedule& schedule, int epochs,
                             data::DataLoader& loader, const TrainStep& train_step,
                             optim::Optimizer& optimizer, nn::Module& model,
                             const data::TensorDataset& held_out,
                             std::vector<EpochMetrics>& metrics, const std::string& stage) {
    optim::CosineAnnealingLR cosine(optimizer, std::max(epochs, 1));
    std::int64_t step_index = 0;
    const TrainStep step = [&](const data::Batch& batch) {
        pruner.step(step_index++);
        return train_step(batch);
    };
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        const double lr = optimizer.param_groups()[0].lr;
        metrics.push_back(run_epoch(stage, epoch, epochs, loader, step, model, held_out, lr));
        cosine.step();
    }
    if (pruner.current_sparsity() < schedule.final_sparsity) {
        pruner.step(schedule.end_step);
    }
}

transforms::ActivationParams calibrate(nn::Module& model, const data::TensorDataset& train,
                                       const std::string& observer, std::size_t batches,
                                       std::uint64_t seed, const GraphPass& prepare) {
    constexpr std::size_t kCalibrationBatch = 256;
    data::DataLoader loader(train,
                            {.batch_size = kCalibrationBatch, .drop_last = true, .seed = seed});
    const Graph graph = inference_graph(model, train.head(kCalibrationBatch).inputs());
    transforms::Calibration calibration = transforms::prepare_quantization(
        prepare ? prepare(graph) : graph, {.activation_observer = observer});
    std::size_t observed = 0;
    for (const data::Batch& batch : loader) {
        if (observed++ == batches) {
            break;
        }
        calibration.observe({batch.inputs});
    }
    return calibration.activation_params();
}

Graph int8_graph(nn::Module& model, const Tensor& inputs,
                 const transforms::ActivationParams& params, const GraphPass& prepare) {
    const Graph graph = inference_graph(model, inputs);
    return transforms::convert_int8(prepare ? prepare(graph) : graph, params);
}

double int8_accuracy(nn::Module& model, const transforms::ActivationParams& params,
                     const data::TensorDataset& dataset, const GraphPass& prepare) {
    std::map<std::size_t, Graph> graphs;
    data::DataLoader loader(dataset, {.batch_size = 1000, .shuffle = false});
    std::size_t correct = 0;
    for (const data::Batch& batch : loader) {
        const std::size_t n = batch.targets.numel();
        auto found = graphs.find(n);
        if (found == graphs.end()) {
            found = graphs.emplace(n, int8_graph(model, batch.inputs, params, prepare)).first;
        }
        correct += count_correct(found->second.forward({batch.inputs})[0], batch.targets);
    }
    return dataset.size() == 0 ? std::nan("")
                               : static_cast<double>(correct) / static_cast<double>(dataset.size());
}

void print_on_root_only(bool is_root) {
    if (!is_root && std::freopen("/dev/null", "w", stdout) == nullptr) {
        throw io_error("cannot redirect standard output to /dev/null");
    }
}

void write_text(const std::filesystem::path& path, const std::string& text) {
    io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

void write_metrics(const std::filesystem::path& path, const std::vector<EpochMetrics>& metrics) {
    std::string csv =
        "stage,epoch,train_loss,train_accuracy,validation_loss,validation_accuracy,lr,seconds\n";
    char row[256];
    for (const EpochMetrics& m : metrics) {
        std::snprintf(row, sizeof row, "%s,%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f\n", m.stage.c_str(),
                      m.epoch, m.train_loss, m.train_accuracy, m.validation_loss,
                      m.validation_accuracy, m.lr, m.seconds);
        csv += row;
    }
    write_text(path, csv);
}

void write_curves(const std::filesystem::path& path, const std::vector<EpochMetrics>& metrics) {
    Series train_loss{"training", {}, {}};
    Series validation_loss{"validation", {}, {}};
    Series train_accuracy{"training", {}, {}};
    Series validation_accuracy{"validation", {}, {}};
    double epoch = 0.0;  // counted across stages, so fine-tuning continues the curve
    for (const EpochMetrics& m : metrics) {
        epoch += 1.0;
        train_loss.x.push_back(epoch);
        train_loss.y.push_back(m.train_loss);
        validation_loss.x.push_back(epoch);
        validation_loss.y.push_back(m.validation_loss);
        train_accuracy.x.push_back(epoch);
        train_accuracy.y.push_back(m.train_accuracy);
        validation_accuracy.x.push_back(epoch);
        validation_accuracy.y.push_back(m.validation_accuracy);
    }
    write_text(path, render_svg({
                         {"Cross-entropy loss", "epoch", "loss", {train_loss, validation_loss}},
                         {"Accuracy", "epoch", "accuracy", {train_accuracy, validation_accuracy}},
                     }));
}

void write_summary(const std::filesystem::path& path, std::size_t inference_size,
                   const std::vector<Stage>& stages) {
    std::string json =
        "{\n  \"inference_batch_size\": " + std::to_string(inference_size) + ",\n  \"stages\": [\n";
    char entry[512];
    for (std::size_t i = 0; i < stages.size(); ++i) {
        const Stage& s = stages[i];
        std::snprintf(entry, sizeof entry,
                      "    {\"name\": \"%s\", \"test_accuracy\": %.4f, \"sparsity\": %.4f, "
                      "\"model_bytes\": %ju, \"inference_ms_per_batch\": %.4f}%s\n",
                      s.name.c_str(), s.test_accuracy, s.sparsity, s.model_bytes, s.inference_ms,
                      i + 1 < stages.size() ? "," : "");
        json += entry;
    }
    write_text(path, json + "  ]\n}\n");
}

void print_table(std::size_t inference_size, const std::vector<Stage>& stages) {
    std::printf("\n%-16s %14s %10s %14s %22s\n", "stage", "test accuracy", "sparsity",
                "model bytes", ("inference ms / " + std::to_string(inference_size)).c_str());
    for (const Stage& s : stages) {
        std::printf("%-16s %14.4f %9.1f%% %14ju %22.3f\n", s.name.c_str(), s.test_accuracy,
                    100.0 * s.sparsity, s.model_bytes, s.inference_ms);
    }
}

}  // namespace xgrad::examples
