"""Ready-made models: SimpleCNN, ResNet-18/34 (ImageNet and CIFAR stems), the Keras U-Net,
and LSTM models for sequences."""
from .cnn import SimpleCNN
from .resnet import BasicBlock, ResNet, resnet18, resnet34
from .unet import UNet
from .rnn import LSTMClassifier, LSTMRegressor

__all__ = ["SimpleCNN", "BasicBlock", "ResNet", "resnet18", "resnet34", "UNet",
           "LSTMClassifier", "LSTMRegressor"]
